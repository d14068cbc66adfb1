//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package listeners

import "syscall"

// idleWaitSupported reports whether waitReadable works on this platform.
const idleWaitSupported = false

// waitReadable is not used where idleWaitSupported is false.
func waitReadable(syscall.RawConn) error { return nil }
