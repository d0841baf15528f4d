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

// errWouldBlock is writeOnce's error when the socket's send buffer is full.
var errWouldBlock = syscall.EAGAIN

// writeOnce makes one write of b to non-blocking socket fd; when nothing
// can be written now, it returns errWouldBlock.
func writeOnce(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Write(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}
