"""The Terraform configuration in `infra/` read with python-hcl2: blocks, and the references between them.

No Terraform binary is available, so this is the static half of `terraform validate`: every file parses and
every `var.` / `local.` / `data.` / `module.` / resource reference names a declared block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import hcl2

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)

_REF = re.compile(
    r"(?<![\w.\-])(?:"
    r"(?P<kw>var|local|module)\.(?P<name>[A-Za-z_][\w-]*)"
    r"|data\.(?P<dtype>[A-Za-z_]\w*)\.(?P<dname>[A-Za-z_][\w-]*)"
    r"|(?P<rtype>aws_\w+)\.(?P<rname>[A-Za-z_][\w-]*)"
    r")"
)


@dataclass
class Config:
    files: dict[str, dict] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)

    def resource(self, rtype: str, name: str) -> dict:
        return self.resources[(rtype, name)]


def _labelled(blocks: list[dict], depth: int) -> Iterator[tuple[tuple[str, ...], dict]]:
    """(labels, body) of each block: one label for variables and outputs, two for resources and data."""
    for block in blocks:
        for label, body in block.items():
            if depth == 1:
                yield (label,), body
            else:
                for name, inner in body.items():
                    yield (label, name), inner


def load_config(directory: Path = INFRA) -> Config:
    """Parse every .tf file of `directory` (a parse error raises, naming the file)."""
    config = Config()
    for path in sorted(directory.glob("*.tf")):
        try:
            parsed = hcl2.loads(path.read_text(), serialization_options=OPTIONS)
        except Exception as err:
            raise AssertionError(f"{path.relative_to(REPO)} does not parse: {err}") from err
        config.files[path.name] = parsed
        for key, body in _labelled(parsed.get("resource", []), 2):
            config.resources[key] = body
        for key, body in _labelled(parsed.get("data", []), 2):
            config.data[key] = body
        for (name,), body in _labelled(parsed.get("variable", []), 1):
            config.variables[name] = body
        for (name,), body in _labelled(parsed.get("output", []), 1):
            config.outputs[name] = body
        for (name,), body in _labelled(parsed.get("module", []), 1):
            config.modules[name] = body
        for block in parsed.get("locals", []):
            config.locals.update(block)
    return config


def interpolations(text: str) -> Iterator[str]:
    """The bodies of the `${...}` expressions in a serialized value (nested ones included in their parent)."""
    i = 0
    while (start := text.find("${", i)) != -1:
        depth, j = 0, start + 1
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        yield text[start + 2 : j]
        i = j + 1


def strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


@dataclass(frozen=True)
class Reference:
    kind: str  # var, local, module, data, resource
    target: tuple[str, ...]
    where: str

    def __str__(self) -> str:
        prefix = {"resource": ""}.get(self.kind, f"{self.kind}.")
        return f"{prefix}{'.'.join(self.target)} (in {self.where})"


def references(config: Config) -> Iterator[Reference]:
    """Every reference made anywhere in the configuration, with the file it appears in."""
    for filename, parsed in config.files.items():
        for text in strings(parsed):
            for expression in interpolations(text):
                for m in _REF.finditer(expression):
                    if m["kw"]:
                        yield Reference(m["kw"], (m["name"],), filename)
                    elif m["dtype"]:
                        yield Reference("data", (m["dtype"], m["dname"]), filename)
                    else:
                        yield Reference("resource", (m["rtype"], m["rname"]), filename)


def resolves(config: Config, ref: Reference) -> bool:
    declared = {
        "var": config.variables,
        "local": config.locals,
        "module": config.modules,
        "data": config.data,
        "resource": config.resources,
    }[ref.kind]
    return (ref.target[0] if len(ref.target) == 1 else ref.target) in declared


def evaluate_path(config: Config, expression: str) -> Path:
    """A path expression such as `${local.dir}/x.json` or `${path.module}/../y` made concrete."""

    def substitute(m: re.Match) -> str:
        inner = m.group(1)
        if inner == "path.module":
            return str(INFRA)
        if inner.startswith("local."):
            return str(evaluate_path(config, str(config.locals[inner[len("local.") :]])))
        raise ValueError(f"cannot evaluate ${{{inner}}} as a path")

    return Path(re.sub(r"\$\{([\w.]+)\}", substitute, expression)).resolve()


def file_argument(expression: str) -> str:
    """The argument of the `file(...)` call inside an expression like `${jsondecode(file("..."))}`."""
    m = re.search(r'file\("(.+?)"\)', expression)
    if not m:
        raise AssertionError(f"no file(...) in {expression!r}")
    return m.group(1)
