package kernel

import "golang.org/x/sys/unix"

// Exec replaces the calling process with path (execve(2)), keeping the
// calling thread's no_new_privs bit and io_uring task filters, which the
// new program and its children inherit. Call it from the goroutine that
// registered the filters, locked to its thread. It returns only on failure.
func Exec(path string, argv, envv []string) error {
	if err := unix.Exec(path, argv, envv); err != nil {
		errno, _ := err.(unix.Errno)
		e := &Error{Op: "execve " + path, Errno: errno}
		switch errno {
		case unix.ENOENT:
			e.Advice = "the program does not exist"
		case unix.EACCES:
			e.Advice = "the program is not executable, or a directory on its path is not searchable"
		case unix.ENOEXEC:
			e.Advice = "the file is not a program this kernel can run"
		}
		return e
	}
	return nil
}

// CloseFD closes file descriptor fd.
func CloseFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		errno, _ := err.(unix.Errno)
		return &Error{Op: "close descriptor", Errno: errno}
	}
	return nil
}

// SetInheritable clears FD_CLOEXEC on fd, so that the descriptor survives
// execve. Tests use it to hand a ring to an exec'd program.
func SetInheritable(fd int) error {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags&^unix.FD_CLOEXEC)
	}
	if err != nil {
		errno, _ := err.(unix.Errno)
		return &Error{Op: "fcntl(F_SETFD) clear FD_CLOEXEC", Errno: errno}
	}
	return nil
}
