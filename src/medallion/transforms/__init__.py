"""Pure DataFrame -> DataFrame transformations, one module per table or coherent group.

Nothing here does IO, reads config or starts a session; jobs call these and do the IO.
"""
