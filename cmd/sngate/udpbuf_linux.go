package main

import "syscall"

// probeUDPBuffers asks the kernel for UDP socket buffers of read and
// write bytes, on a throw-away unbound socket, and returns what it
// grants: what the UDP links got for the same request. Linux reports
// twice the usable size (bookkeeping overhead); the halves are returned.
func probeUDPBuffers(read, write int) (readGot, writeGot int, ok bool) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fd, err = syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, 0, false
		}
	}
	defer syscall.Close(fd)
	grant := func(opt, n int) (int, bool) {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, opt, n); err != nil {
			return 0, false
		}
		v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, opt)
		if err != nil {
			return 0, false
		}
		return v / 2, true
	}
	readGot, ok1 := grant(syscall.SO_RCVBUF, read)
	writeGot, ok2 := grant(syscall.SO_SNDBUF, write)
	return readGot, writeGot, ok1 && ok2
}
