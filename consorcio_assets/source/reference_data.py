"""Fixed reference data of the generator: Brazil's UFs, the consórcio segments, and name vocabularies.

Kept apart from the generator so the numbers that make the data realistic (populations, CEP ranges,
time zones, the market mix of segments, credit medians) can be read and checked in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnidadeFederativa:
    sigla: str
    nome: str
    regiao: str
    #: the Correios CEP ranges of the UF (AM, DF and GO have two); the table stores their envelope
    faixas_cep: tuple[tuple[int, int], ...]
    #: population in millions (IBGE Census 2022): weights where customers live
    populacao: float
    #: UTC offset in hours; Brazil has had no daylight saving time since 2019
    fuso: int
    ddds: tuple[int, ...]
    #: the CPF's 9th digit is the fiscal region that issued it
    regiao_fiscal_cpf: int

    @property
    def cep_inicial(self) -> str:
        return f"{min(a for a, _ in self.faixas_cep):08d}"

    @property
    def cep_final(self) -> str:
        return f"{max(b for _, b in self.faixas_cep):08d}"


# fmt: off
UFS: tuple[UnidadeFederativa, ...] = (
    UnidadeFederativa("AC", "Acre", "Norte", ((69900000, 69999999),), 0.83, -5, (68,), 2),
    UnidadeFederativa("AL", "Alagoas", "Nordeste", ((57000000, 57999999),), 3.13, -3, (82,), 4),
    UnidadeFederativa("AM", "Amazonas", "Norte", ((69000000, 69299999), (69400000, 69899999)), 3.94, -4, (92, 97), 2),
    UnidadeFederativa("AP", "Amapá", "Norte", ((68900000, 68999999),), 0.73, -3, (96,), 2),
    UnidadeFederativa("BA", "Bahia", "Nordeste", ((40000000, 48999999),), 14.14, -3, (71, 73, 74, 75, 77), 5),
    UnidadeFederativa("CE", "Ceará", "Nordeste", ((60000000, 63999999),), 8.79, -3, (85, 88), 3),
    UnidadeFederativa("DF", "Distrito Federal", "Centro-Oeste", ((70000000, 72799999), (73000000, 73699999)),
                      2.82, -3, (61,), 1),
    UnidadeFederativa("ES", "Espírito Santo", "Sudeste", ((29000000, 29999999),), 3.83, -3, (27, 28), 7),
    UnidadeFederativa("GO", "Goiás", "Centro-Oeste", ((72800000, 72999999), (73700000, 76799999)), 7.06, -3,
                      (62, 64), 1),
    UnidadeFederativa("MA", "Maranhão", "Nordeste", ((65000000, 65999999),), 6.78, -3, (98, 99), 3),
    UnidadeFederativa("MG", "Minas Gerais", "Sudeste", ((30000000, 39999999),), 20.54, -3,
                      (31, 32, 33, 34, 35, 37, 38), 6),
    UnidadeFederativa("MS", "Mato Grosso do Sul", "Centro-Oeste", ((79000000, 79999999),), 2.76, -4, (67,), 1),
    UnidadeFederativa("MT", "Mato Grosso", "Centro-Oeste", ((78000000, 78899999),), 3.66, -4, (65, 66), 1),
    UnidadeFederativa("PA", "Pará", "Norte", ((66000000, 68899999),), 8.12, -3, (91, 93, 94), 2),
    UnidadeFederativa("PB", "Paraíba", "Nordeste", ((58000000, 58999999),), 3.97, -3, (83,), 4),
    UnidadeFederativa("PE", "Pernambuco", "Nordeste", ((50000000, 56999999),), 9.06, -3, (81, 87), 4),
    UnidadeFederativa("PI", "Piauí", "Nordeste", ((64000000, 64999999),), 3.27, -3, (86, 89), 3),
    UnidadeFederativa("PR", "Paraná", "Sul", ((80000000, 87999999),), 11.44, -3, (41, 42, 43, 44, 45, 46), 9),
    UnidadeFederativa("RJ", "Rio de Janeiro", "Sudeste", ((20000000, 28999999),), 16.05, -3, (21, 22, 24), 7),
    UnidadeFederativa("RN", "Rio Grande do Norte", "Nordeste", ((59000000, 59999999),), 3.30, -3, (84,), 4),
    UnidadeFederativa("RO", "Rondônia", "Norte", ((76800000, 76999999),), 1.58, -4, (69,), 2),
    UnidadeFederativa("RR", "Roraima", "Norte", ((69300000, 69399999),), 0.64, -4, (95,), 2),
    UnidadeFederativa("RS", "Rio Grande do Sul", "Sul", ((90000000, 99999999),), 10.88, -3, (51, 53, 54, 55), 0),
    UnidadeFederativa("SC", "Santa Catarina", "Sul", ((88000000, 89999999),), 7.61, -3, (47, 48, 49), 9),
    UnidadeFederativa("SE", "Sergipe", "Nordeste", ((49000000, 49999999),), 2.21, -3, (79,), 5),
    UnidadeFederativa("SP", "São Paulo", "Sudeste", ((1000000, 19999999),), 44.41, -3,
                      (11, 12, 13, 14, 15, 16, 17, 18, 19), 8),
    UnidadeFederativa("TO", "Tocantins", "Norte", ((77000000, 77999999),), 1.51, -3, (63,), 1),
)
# fmt: on

#: Fernando de Noronha (PE) has one CEP and its own time zone, UTC-02:00
CEP_NORONHA = 53990000
FUSO_NORONHA = -2


@dataclass(frozen=True)
class Segmento:
    segmento_id: int
    codigo: str
    descricao: str
    indice_reajuste: str
    prazo_minimo: int
    prazo_maximo: int
    #: share of the simulations (ABAC market mix)
    peso_mix: float
    #: log-normal credit: median and sigma of log(credit), in reais
    credito_mediana: float
    credito_sigma: float
    #: the credit range plans of this segment span, in reais
    credito_piso: int
    credito_teto: int
    #: PctTaxaAdm range of its plans, in percent
    taxa_adm: tuple[float, float]
    #: short name used in plan names
    rotulo: str


# fmt: off
SEGMENTOS: tuple[Segmento, ...] = (
    Segmento(1, "AUTO", "Automóveis e utilitários leves", "IPCA", 12, 100, 0.39, 90_000, 0.45,
             25_000, 400_000, (12.0, 20.0), "Auto"),
    Segmento(2, "MOTO", "Motocicletas e motonetas", "IPCA", 12, 80, 0.30, 20_000, 0.40,
             8_000, 80_000, (12.0, 22.0), "Moto"),
    Segmento(3, "IMOVEL", "Imóveis residenciais e comerciais", "INCC", 100, 240, 0.22, 300_000, 0.55,
             80_000, 3_000_000, (14.0, 25.0), "Imóvel"),
    Segmento(4, "PESADO", "Veículos pesados, caminhões e máquinas agrícolas", "IGPM", 36, 120, 0.05,
             390_000, 0.45, 120_000, 2_500_000, (10.0, 18.0), "Pesados"),
    Segmento(5, "ELETRO", "Eletroeletrônicos e outros bens móveis duráveis", "IPCA", 12, 60, 0.03, 8_000,
             0.50, 2_000, 40_000, (10.0, 20.0), "Eletro"),
    Segmento(6, "SERVICO", "Serviços: educação, saúde, reformas e eventos", "IPCA", 12, 48, 0.01, 15_000,
             0.50, 5_000, 60_000, (15.0, 25.0), "Serviços"),
)
# fmt: on

INDICES = ("INCC", "IPCA", "IGPM")

ADMINISTRADORAS: tuple[str, ...] = (
    "Consórcio Nacional Horizonte Ltda.",
    "Administradora de Consórcios Aliança S.A.",
    "Consórcio Vale do Paraíba Ltda.",
    "Porto Sereno Administradora de Consórcio Ltda.",
    "Consórcio Nacional Ipê Amarelo Ltda.",
    "Embarca Administradora de Consórcios S.A.",
    "Consórcio Estrela do Sul Ltda.",
    "Rodovale Administradora de Consórcios Ltda.",
    "Consórcio Nacional Três Marias Ltda.",
    "Âncora Administradora de Consórcios Ltda.",
    "Consórcio Paulista União S.A.",
    "Administradora de Consórcio Cerrado Goiano Ltda.",
    "Consórcio Nordeste Solidário Ltda.",
    "Consórcio Guaporé & Madeira Ltda.",
)

ADJETIVOS_PLANO = ("Fácil", "Mais", "Prime", "Conquista", "Flex", "Essencial", "Já", "Premium")

NOMES_MASCULINOS = (
    "João",
    "José",
    "Antônio",
    "Francisco",
    "Carlos",
    "Paulo",
    "Pedro",
    "Lucas",
    "Luiz",
    "Marcos",
    "Luís",
    "Gabriel",
    "Rafael",
    "Daniel",
    "Marcelo",
    "Bruno",
    "Eduardo",
    "Felipe",
    "Raimundo",
    "Rodrigo",
    "Sebastião",
    "André",
    "Fábio",
    "Márcio",
    "Vinícius",
    "Caio",
    "Thiago",
    "Júlio",
    "César",
    "Otávio",
    "Joaquim",
    "Benedito",
    "Gonçalo",
    "Ângelo",
    "Estêvão",
    "Inácio",
)
NOMES_FEMININOS = (
    "Maria",
    "Ana",
    "Francisca",
    "Antônia",
    "Adriana",
    "Juliana",
    "Márcia",
    "Fernanda",
    "Patrícia",
    "Aline",
    "Sandra",
    "Camila",
    "Amanda",
    "Bruna",
    "Jéssica",
    "Letícia",
    "Júlia",
    "Luciana",
    "Vanessa",
    "Mariana",
    "Beatriz",
    "Lúcia",
    "Cecília",
    "Helena",
    "Valéria",
    "Débora",
    "Mônica",
    "Conceição",
    "Glória",
    "Inês",
    "Tânia",
    "Cláudia",
    "Luíza",
    "Sônia",
    "Fátima",
    "Irene",
)
SOBRENOMES = (
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Rocha",
    "Dias",
    "Nascimento",
    "Andrade",
    "Moreira",
    "Nunes",
    "Marques",
    "Machado",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Gonçalves",
    "Santana",
    "Teixeira",
    "Araújo",
    "Conceição",
    "Magalhães",
    "Brandão",
    "Falcão",
    "Simões",
    "Guimarães",
    "Galvão",
    "Assunção",
    "Romão",
    "Sá",
    "Leão",
    "Damião",
    "Antunes",
    "Monteiro",
    "Brito",
    "D'Ávila",
    "Sant'Anna",
    "Peixoto",
    "Lacerda",
    "Câmara",
    "Cunha",
    "Mourão",
    "Barros",
)
ATIVIDADES_EMPRESA = (
    "Comércio de Peças",
    "Transportes",
    "Distribuidora",
    "Construtora",
    "Agropecuária",
    "Padaria e Confeitaria",
    "Auto Peças",
    "Clínica Médica",
    "Logística",
    "Materiais de Construção",
    "Informática",
    "Restaurante",
    "Mercearia",
    "Serralheria",
    "Farmácia",
    "Laticínios",
)
FANTASIAS_EMPRESA = (
    "São Jorge",
    "Boa Esperança",
    "Três Irmãos",
    "Nossa Senhora Aparecida",
    "Horizonte",
    "Santa Luzia",
    "Vale Verde",
    "Ipê",
    "Pôr do Sol",
    "Estrela Guia",
    "Bom Jesus",
    "Pioneira",
    "Iguaçu",
    "Itapuã",
    "Serra Azul",
    "Cristo Rei",
)
SUFIXOS_EMPRESA = ("Ltda.", "Ltda.", "Ltda.", "ME", "S.A.", "EPP")

#: e-mail providers of natural persons and their shares
DOMINIOS_EMAIL = (
    ("gmail.com", 0.46),
    ("hotmail.com", 0.19),
    ("outlook.com", 0.09),
    ("yahoo.com.br", 0.08),
    ("uol.com.br", 0.05),
    ("bol.com.br", 0.05),
    ("icloud.com", 0.04),
    ("terra.com.br", 0.04),
)

#: short free-text notes of the sales channel, some with characters outside the BMP
OBSERVACOES = (
    "Cliente pediu retorno por WhatsApp.",
    "Simulação feita no salão do automóvel.",
    "Quer usar o FGTS no lance.",
    "Comparando com financiamento do banco.",
    "Aguardando aprovação do cônjuge.",
    "Prefere parcela reduzida até a contemplação.",
    "Indicação de cliente antigo 👍",
    "Lance embutido explicado; cliente vai pensar.",
    "Retornar após o 13º salário.",
    "Cliente já participou de grupo encerrado.",
    "Atendimento na agência de Ribeirão Preto.",
    "Pediu simulação com prazo maior 🙂",
    "Dúvida sobre correção pelo INCC.",
    "Contato pelo chat do site; ligação às 18h.",
)

#: paragraph repeated into the rare long notes (proposal texts pasted by brokers)
PARAGRAFO_LONGO = (
    "Proposta detalhada: o consorciado declara ciência de que a contemplação ocorre por sorteio ou lance, "
    "de que o crédito é corrigido pelo índice do segmento e de que a taxa de administração é diluída no "
    "prazo do grupo. Observações do corretor — reunião em 12/03, documentação conferida, cônjuge ciente. "
)
