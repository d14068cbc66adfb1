package listeners

import (
	"bufio"
	"io"
	"sync"
)

// buffer is a pooled write buffer; a pointer type so that pooling it
// does not allocate.
type buffer struct{ b []byte }

// pools holds the buffers that connections borrow while active, so that
// idle connections hold none.
type pools struct {
	size    int
	readers sync.Pool
	writers sync.Pool
}

// maxPooledWrite is the largest write buffer kept for reuse.
const maxPooledWrite = 64 << 10

func newPools(readSize int) *pools {
	p := &pools{size: readSize}
	p.readers.New = func() any { return bufio.NewReaderSize(nil, readSize) }
	p.writers.New = func() any { return &buffer{b: make([]byte, 0, 2048)} }
	return p
}

func (p *pools) getReader(r io.Reader) *bufio.Reader {
	br := p.readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func (p *pools) putReader(br *bufio.Reader) {
	br.Reset(nil)
	p.readers.Put(br)
}

func (p *pools) getBuffer() *buffer { return p.writers.Get().(*buffer) }

func (p *pools) putBuffer(b *buffer) {
	if b == nil || cap(b.b) > maxPooledWrite {
		return
	}
	b.b = b.b[:0]
	p.writers.Put(b)
}
