; The kernel refuses half-word loads in io_uring filters.
	ld [16]
	.insn 0x28, 0, 0, 0x10
	ret a
