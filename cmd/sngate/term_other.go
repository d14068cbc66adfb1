//go:build !linux

package main

import "os"

// isTerminal reports false: echo control is implemented for Linux only,
// so elsewhere the password is read as a line from standard input.
func isTerminal(*os.File) bool { return false }

// readNoEcho reads one line from f (echo is not turned off).
func readNoEcho(f *os.File) ([]byte, error) { return readLine(f) }
