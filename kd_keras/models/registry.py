"""Name -> builder registries for teacher and student architectures."""

import keras


class Registry:
    """Builders of one kind of model, each selectable on the command line by its name.

    >>> teachers = Registry("teacher")
    >>> @teachers.register("one-conv")
    ... def one_conv():
    ...     return keras.Sequential([keras.Input((52, 52, 1)), keras.layers.Conv2D(8, 52)])
    >>> teachers.names(), teachers.build("one-conv", seed=0).count_params()
    (['one-conv'], 21640)
    """

    def __init__(self, kind):
        self.kind = kind
        self._builders = {}

    def register(self, name):
        """Decorator: make the builder selectable by `name`."""

        def register(builder):
            if name in self._builders:
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return register

    def names(self):
        return sorted(self._builders)

    def build(self, name, seed=None):
        """A freshly initialized model; `seed` makes its initial weights reproducible."""
        if name not in self._builders:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        if seed is not None:
            keras.utils.set_random_seed(seed)
        return self._builders[name]()


STUDENTS = Registry("student")
TEACHERS = Registry("teacher")
register_student, student_names, build_student = STUDENTS.register, STUDENTS.names, STUDENTS.build
register_teacher, teacher_names, build_teacher = TEACHERS.register, TEACHERS.names, TEACHERS.build
SEGCLASS_MODELS = Registry("segmentation + classification model")
register_segclass_model, segclass_model_names, build_segclass_model = (
    SEGCLASS_MODELS.register, SEGCLASS_MODELS.names, SEGCLASS_MODELS.build)
