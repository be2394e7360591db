"""Brazilian identifiers: CPF, CNPJ (numeric and the alphanumeric format of July 2026), CEP, phone.

Scalar validators check one value as SQL Server returns it (CHAR padding is ignored); vectorised
generators turn numpy arrays of bases into ASCII matrices (one row per document) so millions of
valid documents cost a few array operations.
"""

from __future__ import annotations

import re

import numpy as np

#: mod-11 weights of the CPF's first and second check digits (over 9 and 10 digits)
_CPF_PESOS_1 = np.arange(10, 1, -1)
_CPF_PESOS_2 = np.arange(11, 1, -1)
#: mod-11 weights of the CNPJ's first and second check digits (over 12 and 13 characters)
_CNPJ_PESOS_1 = np.array([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
_CNPJ_PESOS_2 = np.array([6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])

_CPF_RE = re.compile(r"[0-9]{11}")
_CNPJ_RE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
_CEP_RE = re.compile(r"[0-9]{8}")
TELEFONE_RE = re.compile(r"^55[1-9][1-9]9?[0-9]{8}$")


def _digito_mod11(valores: np.ndarray, pesos: np.ndarray) -> np.ndarray:
    """Check digit shared by CPF and CNPJ: 11 - (weighted sum mod 11), or 0 when the rest is < 2."""
    resto = (valores * pesos).sum(axis=-1) % 11
    return np.where(resto < 2, 0, 11 - resto)


def _valores(texto: str) -> np.ndarray:
    """Each character valued as its ASCII code minus 48 (digits 0-9, letters A=17 .. Z=42)."""
    return np.frombuffer(texto.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48


def is_valid_cpf(s: str) -> bool:
    """11 digits, both mod-11 check digits right, not all digits equal."""
    s = s.rstrip(" ")
    if not _CPF_RE.fullmatch(s) or len(set(s)) == 1:
        return False
    v = _valores(s)
    return bool(_digito_mod11(v[:9], _CPF_PESOS_1) == v[9] and _digito_mod11(v[:10], _CPF_PESOS_2) == v[10])


def is_valid_cnpj(s: str) -> bool:
    """14 characters: 12 of [0-9A-Z] then two mod-11 check digits; all-zero is not a CNPJ."""
    s = s.rstrip(" ")
    if not _CNPJ_RE.fullmatch(s) or s == "0" * 14:
        return False
    v = _valores(s)
    return bool(_digito_mod11(v[:12], _CNPJ_PESOS_1) == v[12] and _digito_mod11(v[:13], _CNPJ_PESOS_2) == v[13])


def is_valid_cep(s: str) -> bool:
    """A CEP is stored as exactly 8 digits, no hyphen."""
    return bool(_CEP_RE.fullmatch(s.rstrip(" ")))


def cep_na_faixa(cep: str, cep_inicial: str, cep_final: str) -> bool:
    """Whether a CEP lies in a UF's range (8-digit strings compare like their numbers)."""
    return is_valid_cep(cep) and cep_inicial.rstrip(" ") <= cep.rstrip(" ") <= cep_final.rstrip(" ")


def is_valid_telefone(s: str) -> bool:
    """55 + DDD (two digits 1-9) + optional mobile 9 + 8 digits."""
    return bool(TELEFONE_RE.fullmatch(s))


def digitos_ascii(valores: np.ndarray, largura: int) -> np.ndarray:
    """Non-negative integers -> (n, largura) uint8 ASCII digits, zero-padded on the left."""
    potencias = 10 ** np.arange(largura - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(valores, dtype=np.int64)[:, None] // potencias) % 10 + 48).astype(np.uint8)


def gerar_cpfs(bases: np.ndarray) -> np.ndarray:
    """9-digit bases (int, 0 .. 999,999,999) -> (n, 11) ASCII CPFs with their check digits.

    The caller keeps bases off the ten all-equal values, whose CPFs are invalid by definition.
    """
    v = digitos_ascii(bases, 9).astype(np.int64) - 48
    d1 = _digito_mod11(v, _CPF_PESOS_1)
    d2 = _digito_mod11(np.column_stack([v, d1]), _CPF_PESOS_2)
    return (np.column_stack([v, d1, d2]) + 48).astype(np.uint8)


def gerar_cnpjs(bases: np.ndarray) -> np.ndarray:
    """(n, 12) ASCII bases of [0-9A-Z] (root + branch) -> (n, 14) ASCII CNPJs with check digits."""
    v = bases.astype(np.int64) - 48
    d1 = _digito_mod11(v, _CNPJ_PESOS_1)
    d2 = _digito_mod11(np.column_stack([v, d1]), _CNPJ_PESOS_2)
    return np.column_stack([bases, d1 + 48, d2 + 48]).astype(np.uint8)
