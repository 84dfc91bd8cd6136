"""Record: a small data class for mocker-runc's start path, without `dataclasses`.

@dataclass would do the same, but importing the dataclasses module (it pulls
in inspect, ast, tokenize, ...) and generating the methods of each class cost
mocker-runc ~10 ms per `run`, a quarter of what runc needs for all of it.

    class Hook(Record):
        path: str
        args: list[str] = []

    Hook("/bin/true") == Hook(path="/bin/true", args=[])

The fields are the class's annotations, in order; a class attribute is the
field's default. A list or dict default is copied, so instances never share it.
"""


class Record:
    def __init__(self, *args, **kwargs):
        cls = type(self)
        names = list(cls.__annotations__)
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
            setattr(self, name, value)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def as_dict(self) -> dict:
        """The fields as a new dict (shallow, unlike dataclasses.asdict)."""
        return dict(vars(self))
