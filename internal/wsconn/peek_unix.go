//go:build unix

package wsconn

import "syscall"

// canPeek reports whether readable works on this system.
const canPeek = true

// readable reports whether socket fd has bytes to read, or an end or error
// to report, without consuming anything; false means the reader must wait.
func readable(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err != syscall.EAGAIN && err != syscall.EINTR
}
