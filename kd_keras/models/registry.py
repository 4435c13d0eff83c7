"""Name -> builder registry for student architectures."""

import keras

_STUDENTS = {}


def register_student(name):
    """Decorator: make the builder selectable as `--student NAME`."""

    def register(builder):
        if name in _STUDENTS:
            raise ValueError(f"a student named {name!r} is already registered")
        _STUDENTS[name] = builder
        return builder

    return register


def student_names():
    return sorted(_STUDENTS)


def build_student(name, seed=None):
    """A freshly initialized student; `seed` makes its initial weights reproducible."""
    if name not in _STUDENTS:
        raise ValueError(f"unknown student {name!r}; choose one of {', '.join(student_names())}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return _STUDENTS[name]()
