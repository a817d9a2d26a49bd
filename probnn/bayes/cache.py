"""A bounded cache of compiled programs (NUTS kernels, VI fits), least recently used out first."""

import collections


class CompiledCache:
    """At most `maxsize` compiled programs by key; the least recently used is dropped first.

    A key names a model structure (e.g. `("glm", family, n, p, ...)`, plus the
    state's shape and the kernel's settings): a later run of the same structure
    reuses its program instead of tracing and compiling again. Each entry holds
    one XLA executable and the Python closure it was traced from (the model
    and, for `sample`, its data as constants), so the bound caps that memory.

    Example:
    >>> cache = CompiledCache(maxsize=2)
    >>> for key in "abca":
    ...     _ = cache.get_or_build(key, lambda: key.upper())
    >>> list(cache.keys())
    ['c', 'a']
    """

    def __init__(self, maxsize):
        self.maxsize = int(maxsize)
        self._entries = collections.OrderedDict()

    def get_or_build(self, key, build):
        """The program under `key` (None: always `build()`, not kept), built on a miss."""
        if key is None:
            return build()
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        program = self._entries[key] = build()
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return program

    def keys(self):
        return self._entries.keys()

    def __len__(self):
        return len(self._entries)
