package serial

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// failAfter bounds every wait so a broken test fails instead of hanging;
// no test asserts on timing.
const failAfter = 10 * time.Second

// fakeDev is the modem side of a pty pair. The link opens the slave
// through a symlink the test controls, as it would open /dev/ttyUSB0.
type fakeDev struct {
	t      *testing.T
	path   string
	master *os.File
	slave  *os.File
	chunks chan []byte
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// setRaw puts a tty in raw mode so no byte is translated or echoed.
func setRaw(t *testing.T, f *os.File) {
	t.Helper()
	fd := int(f.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
}

// pollable returns a non-blocking duplicate of f registered with the
// runtime poller (pty.Open leaves the master in blocking mode, where
// Close would not interrupt a pending Read), and closes f.
func pollable(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	return os.NewFile(uintptr(fd), "ptmx")
}

// newFakeDev creates a pty and points path at its slave.
func newFakeDev(t *testing.T, path string) *fakeDev {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty available: %v", err)
	}
	setRaw(t, s)
	m = pollable(t, m)
	tmp := path + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(s.Name(), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	d := &fakeDev{t: t, path: path, master: m, slave: s, chunks: make(chan []byte, 1024), stop: make(chan struct{})}
	d.wg.Add(1)
	go d.readLoop()
	t.Cleanup(d.unplug)
	return d
}

func devPath(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }

func (d *fakeDev) readLoop() {
	defer d.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := d.master.Read(buf)
		if n > 0 {
			select {
			case d.chunks <- append([]byte(nil), buf[:n]...):
			case <-d.stop:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (d *fakeDev) write(b []byte) {
	d.t.Helper()
	if _, err := d.master.Write(b); err != nil {
		d.t.Fatalf("modem write: %v", err)
	}
}

// unplug closes both ends: the link's reads fail as with a USB modem
// pulled out, and the device path dangles.
func (d *fakeDev) unplug() {
	d.once.Do(func() {
		// The path goes first, so the link cannot reopen a pty number
		// another process grabs before the test plugs a new device in.
		if target, err := os.Readlink(d.path); err == nil && target == d.slave.Name() {
			_ = os.Remove(d.path)
		}
		close(d.stop)
		_ = d.master.Close()
		_ = d.slave.Close()
		d.wg.Wait()
	})
}

// next returns the next frame the link wrote, decoded with dec.
func (d *fakeDev) next(dec radios.FrameDecoder, pending *[][]byte) []byte {
	d.t.Helper()
	timeout := time.After(failAfter)
	for len(*pending) == 0 {
		select {
		case c := <-d.chunks:
			dec.Feed(c, func(f []byte) { *pending = append(*pending, append([]byte(nil), f...)) })
		case <-timeout:
			d.t.Fatal("modem: nothing received from the link")
		}
	}
	f := (*pending)[0]
	*pending = (*pending)[1:]
	return f
}

// events collects PortEvents from a link.
type events chan PortEvent

func (e events) hook(ev PortEvent) {
	select {
	case e <- ev:
	default:
	}
}

func (e events) waitUp(t *testing.T) {
	t.Helper()
	e.wait(t, true)
}

func (e events) wait(t *testing.T, up bool) PortEvent {
	t.Helper()
	timeout := time.After(failAfter)
	for {
		select {
		case ev := <-e:
			if ev.Up == up {
				return ev
			}
		case <-timeout:
			t.Fatalf("no port event up=%v", up)
		}
	}
}

type rxResult struct {
	data []byte
	from transport.Addr
}

// reader runs ReadFrom in a goroutine and hands frames over.
func reader(t *testing.T, l *Link) chan rxResult {
	ch := make(chan rxResult, 64)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, from, err := l.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, transport.ErrClosed) {
					t.Errorf("ReadFrom: %v", err)
				}
				close(ch)
				return
			}
			ch <- rxResult{append([]byte(nil), buf[:n]...), from}
		}
	}()
	return ch
}

func recv(t *testing.T, ch chan rxResult) rxResult {
	t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			t.Fatal("link closed")
		}
		return r
	case <-time.After(failAfter):
		t.Fatal("link: nothing received")
	}
	return rxResult{}
}

func openLink(t *testing.T, cfg Config) (*Link, events) {
	t.Helper()
	ev := make(events, 64)
	cfg.OnPortState = ev.hook
	if cfg.ReopenMin == 0 {
		cfg.ReopenMin = 5 * time.Millisecond
		cfg.ReopenMax = 50 * time.Millisecond
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, ev
}

func failure(t *testing.T, l *Link) TxFailure {
	t.Helper()
	select {
	case f := <-l.TxFailures():
		return f
	case <-time.After(failAfter):
		t.Fatal("no TxFailure")
	}
	return TxFailure{}
}
