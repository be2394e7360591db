"""CPF, CNPJ (numeric and alphanumeric), CEP and phone rules of business-rules.md."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consorcio_assets.rules.documents import (
    cep_na_faixa,
    digitos_ascii,
    gerar_cnpjs,
    gerar_cpfs,
    is_valid_cep,
    is_valid_cnpj,
    is_valid_cpf,
    is_valid_telefone,
)

ALFANUMERICO = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize(
    "cpf, valido",
    [
        ("52998224725", True),  # 529.982.247-25
        ("11144477735", True),
        ("52998224725   ", True),  # CHAR(14) padding is not part of the identifier
        ("52998224724", False),  # wrong second check digit
        ("52998224715", False),  # wrong first check digit
        ("11111111111", False),  # mod-11 passes, but all digits are equal
        ("00000000000", False),
        ("529.982.247-25", False),  # stored digits only
        ("5299822472", False),
        ("529982247250", False),
        ("5299822472A", False),
        ("", False),
    ],
)
def test_cpf_examples(cpf, valido):
    assert is_valid_cpf(cpf) is valido


@pytest.mark.parametrize(
    "cnpj, valido",
    [
        ("11222333000181", True),  # 11.222.333/0001-81
        ("12ABC34501DE35", True),  # Receita Federal's alphanumeric example 12.ABC.345/01DE-35
        ("11222333000182", False),
        ("11222333000191", False),
        ("12ABC34501DE36", False),
        ("12abc34501de35", False),  # letters are upper-case only
        ("12ABC34501DE3A", False),  # check digits are always numeric
        ("00000000000000", False),
        ("1122233300018", False),
        ("11.222.333/0001-81", False),
    ],
)
def test_cnpj_examples(cnpj, valido):
    assert is_valid_cnpj(cnpj) is valido


def test_generated_cpfs_match_known_examples():
    assert [bytes(r).decode() for r in gerar_cpfs(np.array([529982247, 111444777]))] == ["52998224725", "11144477735"]


def test_generated_cnpjs_match_known_examples():
    bases = np.frombuffer(b"11222333000112ABC34501DE", np.uint8).reshape(2, 12)
    assert [bytes(r).decode() for r in gerar_cnpjs(bases)] == ["11222333000181", "12ABC34501DE35"]


def _dv_textbook(valores: list[int], pesos: list[int]) -> int:
    resto = sum(v * p for v, p in zip(valores, pesos)) % 11
    return 0 if resto < 2 else 11 - resto


def _cpf_textbook(s: str) -> bool:
    if len(s) != 11 or not s.isdigit() or len(set(s)) == 1:
        return False
    d = [int(c) for c in s]
    return d[9] == _dv_textbook(d[:9], list(range(10, 1, -1))) and d[10] == _dv_textbook(d[:10], list(range(11, 1, -1)))


def _cnpj_textbook(s: str) -> bool:
    if len(s) != 14 or any(c not in ALFANUMERICO for c in s[:12]) or not s[12:].isdigit() or s == "0" * 14:
        return False
    v = [ord(c) - 48 for c in s]
    pesos = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    return v[12] == _dv_textbook(v[:12], pesos[1:]) and v[13] == _dv_textbook(v[:13], pesos)


def _mudar(s: str, pos: int, data, alfabeto: str) -> str:
    return s[:pos] + data.draw(st.sampled_from([c for c in alfabeto if c != s[pos]])) + s[pos + 1 :]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 999_999_999).filter(lambda b: b % 111_111_111), min_size=1, max_size=50), st.data())
def test_generated_cpfs_validate_and_a_changed_digit_fails(bases, data):
    cpfs = [bytes(r).decode() for r in gerar_cpfs(np.array(bases))]
    assert all(is_valid_cpf(c) for c in cpfs)
    cpf = data.draw(st.sampled_from(cpfs))
    assert not is_valid_cpf(_mudar(cpf, data.draw(st.integers(9, 10)), data, "0123456789"))
    # a base digit change escapes mod 11 only when both remainders fall in {0, 1}: agree with the textbook
    mudado = _mudar(cpf, data.draw(st.integers(0, 8)), data, "0123456789")
    assert is_valid_cpf(mudado) is _cpf_textbook(mudado)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(ALFANUMERICO, min_size=12, max_size=12).filter(lambda b: b != "0" * 12), min_size=1, max_size=50),
    st.data(),
)
def test_generated_cnpjs_validate_and_a_changed_character_fails(bases, data):
    matriz = np.frombuffer("".join(bases).encode(), np.uint8).reshape(-1, 12)
    cnpjs = [bytes(r).decode() for r in gerar_cnpjs(matriz)]
    assert all(is_valid_cnpj(c) for c in cnpjs)
    cnpj = data.draw(st.sampled_from(cnpjs))
    assert not is_valid_cnpj(_mudar(cnpj, data.draw(st.integers(12, 13)), data, "0123456789"))
    mudado = _mudar(cnpj, data.draw(st.integers(0, 11)), data, ALFANUMERICO)
    assert is_valid_cnpj(mudado) is _cnpj_textbook(mudado)


def test_base_changes_mod_11_cannot_see():
    # B (18) -> M (29) differ by 11 in the alphanumeric CNPJ; 0 -> 1 in a CPF's first digit moves both
    # remainders between 0 and 1, which map to the same check digit
    assert is_valid_cnpj("12ABC34501DE35") and is_valid_cnpj("12AMC34501DE35")
    assert is_valid_cpf("06330813701") and is_valid_cpf("16330813701")


def test_a_changed_digit_of_a_known_cpf_fails():
    assert not is_valid_cpf("62998224725") and not is_valid_cpf("52998224735")


@given(st.lists(st.integers(0, 99_999_999), min_size=1, max_size=20))
def test_digitos_ascii_zero_pads(valores):
    assert [bytes(r).decode() for r in digitos_ascii(np.array(valores), 8)] == [f"{v:08d}" for v in valores]


def test_cep():
    assert is_valid_cep("01310100") and is_valid_cep("01310100  ")
    assert not is_valid_cep("01310-100") and not is_valid_cep("1310100") and not is_valid_cep("0131010A")
    assert cep_na_faixa("01310100", "01000000", "19999999")
    assert not cep_na_faixa("20040002", "01000000", "19999999")


@pytest.mark.parametrize(
    "telefone, valido",
    [
        ("5511987654321", True),  # mobile: DDD 11 + 9 + 8 digits
        ("551133334444", True),  # landline
        ("5501987654321", False),  # DDD cannot start with 0
        ("5510987654321", False),  # nor end with 0
        ("11987654321", False),  # no country code
        ("55119876543210", False),
        ("5511987654321\n", False),
    ],
)
def test_telefone(telefone, valido):
    assert is_valid_telefone(telefone) is valido
