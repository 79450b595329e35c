"""One configuration source: a dataclass's fields, with their help in field metadata, become absl flags.

    @dataclass
    class Config:
        ngf: int = option(64, "Generator width.")
        learning_rate: float = option(2e-4, "Adam learning rate.", alias="lr")

    define_flags(Config)            # --ngf, --learning_rate (and --lr, its official name)
    config = from_flags(Config)     # a Config from the parsed flags

Each flag's type, default and help come from the field, so a new option is
written once. ``choices`` makes an enum flag, a tuple default a list flag,
``alias`` keeps an official name working (``--lr``, ``--notruncation``),
``required`` marks a flag the command cannot run without, and ``bounds``
(inclusive ``(lower, upper)``, either may be ``None``) are enforced both when
the flags are parsed and by ``check_bounds`` for configs built in Python.
"""

from __future__ import annotations

import dataclasses
import math

from absl import flags


def option(
    default,
    help: str,  # noqa: A002
    *,
    choices=None,
    alias: str | None = None,
    required: bool = False,
    model: bool = False,
    bounds: tuple | None = None,
):
    """A dataclass field that ``define_flags`` turns into a flag; ``model``: it is one of the model's build options."""
    metadata = {"help": help, "choices": choices, "alias": alias, "required": required, "model": model, "bounds": bounds}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a list option")
    return dataclasses.field(default=default, metadata=metadata)


def define_flags(cls, flag_values: flags.FlagValues = flags.FLAGS, module_name: str | None = None) -> None:
    """Defines one flag per field of ``cls`` (named as the field; help, type and default from it)."""
    for field in dataclasses.fields(cls):
        meta, default = field.metadata, field.default
        if "help" not in meta:
            continue
        kwargs = {"flag_values": flag_values, "module_name": module_name}
        if meta["choices"]:
            flags.DEFINE_enum(field.name, default, list(meta["choices"]), meta["help"], **kwargs)
        elif isinstance(default, bool):
            flags.DEFINE_boolean(field.name, default, meta["help"], **kwargs)
        elif isinstance(default, int):
            lower, upper = meta.get("bounds") or (None, None)
            flags.DEFINE_integer(field.name, default, meta["help"], lower_bound=lower, upper_bound=upper, **kwargs)
        elif isinstance(default, float):
            lower, upper = meta.get("bounds") or (None, None)
            flags.DEFINE_float(field.name, default, meta["help"], lower_bound=lower, upper_bound=upper, **kwargs)
            if math.isfinite(default):  # absl's bounds let NaN through
                flags.register_validator(
                    field.name, lambda v: v is None or math.isfinite(v), message="must be a finite number", flag_values=flag_values
                )
        elif isinstance(default, tuple):
            flags.DEFINE_list(field.name, list(default), meta["help"], **kwargs)
        else:  # a required flag has no default, so absl can tell it was not given
            flags.DEFINE_string(field.name, None if meta["required"] else default, meta["help"], **kwargs)
        if meta["alias"]:
            flags.DEFINE_alias(meta["alias"], field.name, flag_values=flag_values, module_name=module_name)
        if meta["required"]:
            flags.mark_flag_as_required(field.name, flag_values=flag_values)


def from_flags(cls, flag_values: flags.FlagValues = flags.FLAGS):
    """An instance of ``cls`` from the parsed flags (list flags become tuples without empty items)."""
    values = {}
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata:
            continue
        value = flag_values[field.name].value
        if isinstance(field.default, tuple):
            value = tuple(v for v in value if v)
        elif value is None:
            value = field.default
        values[field.name] = value
    return cls(**values)


def bounds_of(config_class, name: str) -> dict:
    """``lower_bound``/``upper_bound`` keyword arguments of option ``name`` of ``config_class``, for another
    command's flag of the same meaning (one home for the bounds)."""
    (field,) = [f for f in dataclasses.fields(config_class) if f.name == name]
    lower, upper = field.metadata["bounds"]
    return {"lower_bound": lower, "upper_bound": upper}


def check_bounds(config) -> None:
    """Raises ``ValueError`` naming the first option outside its declared bounds (or a non-finite float)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{field.name} must be a finite number, got {value}.")
        lower, upper = field.metadata.get("bounds") or (None, None)
        if (lower is not None and value < lower) or (upper is not None and value > upper):
            span = f"[{'-inf' if lower is None else lower}, {'inf' if upper is None else upper}]"
            raise ValueError(f"--{field.name} must be in {span}, got {value}.")


def model_options(config) -> dict:
    """The fields marked ``model=True``: the model's build options, as keyword arguments."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.metadata.get("model")}
