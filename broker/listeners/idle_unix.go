//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package listeners

import (
	"errors"
	"syscall"
)

// idleWaitSupported reports whether waitReadable works on this platform.
const idleWaitSupported = true

// waitReadable blocks until the socket has data (or EOF, or an error) to
// read, without a read buffer, honouring the connection's read deadline.
// The first check peeks at the socket: readiness that arrived before the
// wait was armed is not lost.
func waitReadable(rc syscall.RawConn) error {
	var peekErr error
	err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		if err == nil {
			return true // data, or EOF
		}
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			return false
		}
		peekErr = err
		return true
	})
	if err != nil {
		return err
	}
	return peekErr
}
