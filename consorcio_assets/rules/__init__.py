"""Business rules of the consórcio contract: documents (CPF/CNPJ/CEP/phone) and instalment formulas."""
