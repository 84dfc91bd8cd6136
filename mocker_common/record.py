"""Record and FrozenRecord: mocker's one way to write a small data class.

    class Hook(Record):
        path: str
        args: list[str] = []

    Hook("/bin/true") == Hook(path="/bin/true", args=[])
    hook.replace(args=["-x"])          # a changed copy

The fields are the class's annotations, in order (a subclass adds its own
after its parent's); a class attribute is the field's default, and a list or
dict default is copied, so instances never share it. A Record can be changed
in place; a FrozenRecord cannot, and can be a dict key, a set member, and
sorted (field by field).

Why not @dataclass or typing.NamedTuple: importing dataclasses (it pulls in
inspect) costs ~9 ms and typing ~5 ms, at every start of a command that runs
once per container (mocker-runc, the network hook, the engine); this costs
nothing to import.
"""


_FIELDS: dict[type, tuple[str, ...]] = {}


class Record:
    def __init__(self, *args, **kwargs):
        cls = type(self)
        names = cls.fields()
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}: {len(args)} values for {len(names)} fields")
        values = dict(zip(names, args))
        for name, value in kwargs.items():
            if name not in names or name in values:
                raise TypeError(f"{cls.__name__}: unexpected or repeated field {name!r}")
            values[name] = value
        for name in names:
            if name in values:
                value = values[name]
            elif hasattr(cls, name):
                value = getattr(cls, name)
                if isinstance(value, (list, dict)):
                    value = value.copy()
            else:
                raise TypeError(f"{cls.__name__}: missing field {name!r}")
            object.__setattr__(self, name, value)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        """The field names, in order: the base classes' first."""
        if cls not in _FIELDS:
            names: dict[str, None] = {}
            for klass in reversed(cls.__mro__):
                names.update(dict.fromkeys(klass.__dict__.get("__annotations__", {})))
            _FIELDS[cls] = tuple(names)
        return _FIELDS[cls]

    def replace(self, **changes):
        """A copy with some fields changed (dataclasses.replace, NamedTuple._replace)."""
        return type(self)(**{**vars(self), **changes})

    def as_dict(self) -> dict:
        """The fields as a new dict (shallow, unlike dataclasses.asdict)."""
        return dict(vars(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None   # a Record can change: it cannot be hashed (as a dataclass)


class FrozenRecord(Record):
    """A Record that cannot change once made: hashable, like a NamedTuple."""

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} cannot change: use replace()")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} cannot change: use replace()")

    def __hash__(self) -> int:
        return hash((type(self), *vars(self).values()))

    def __lt__(self, other) -> bool:
        """Ordered field by field, as tuples are (so that a list of them sorts)."""
        if type(self) is not type(other):
            return NotImplemented
        return tuple(vars(self).values()) < tuple(vars(other).values())
