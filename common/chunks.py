"""How much of a file is read or written at once when streaming one: 1 MiB,
large enough that system calls cost nothing, small enough that a genome never
sits in memory. Every streaming loop in the refinery uses this one size."""

CHUNK = 1 << 20
