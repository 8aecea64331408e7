package firecracker_test

import (
	"testing"

	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
)

// FuzzGuestExitCode: the console parser never panics, gives 0..255 only,
// and the last report wins whatever came before it.
func FuzzGuestExitCode(f *testing.F) {
	f.Add([]byte("testguest: up\ncairn-guest: exit 3\n"))
	f.Add([]byte("cairn-guest: exit 300\r\n"))
	f.Add([]byte("xcairn-guest: exit 1\ncairn-guest: exit 2\r\n[ 1.0] reboot: Restarting system\n"))
	f.Fuzz(func(t *testing.T, console []byte) {
		if n, ok := fc.GuestExitCode("", console); ok && (n < 0 || n > 255) {
			t.Fatalf("exit code %d", n)
		}
		tail := append(append([]byte{}, console...), "\ncairn-guest: exit 7\n"...)
		if n, ok := fc.GuestExitCode("", tail); !ok || n != 7 {
			t.Fatalf("last report: %d, %v", n, ok)
		}
	})
}
