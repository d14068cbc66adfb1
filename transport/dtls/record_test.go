package dtls

import (
	"bytes"
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

func hvrBytes(t testing.TB, cookie []byte) []byte {
	rec := &recordlayer.RecordLayer{
		Header: recordlayer.Header{Version: protocol.Version1_2},
		Content: &handshake.Handshake{Message: &handshake.MessageHelloVerifyRequest{
			Version: protocol.Version1_2, Cookie: cookie,
		}},
	}
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRecords(t *testing.T) {
	p := &rawPeer{t: t}
	cookie := []byte("0123456789abcdefghij")

	h, ok := parseClientHello(p.helloBytes(nil, 0))
	if !ok || !h.first || len(h.cookie) != 0 {
		t.Fatalf("first ClientHello: %+v %v", h, ok)
	}
	h, ok = parseClientHello(p.helloBytes(cookie, 1))
	if !ok || !h.first || !bytes.Equal(h.cookie, cookie) {
		t.Fatalf("cookie ClientHello: %+v %v", h, ok)
	}
	// A later fragment carries no cookie field.
	frag := p.helloBytes(cookie, 1)
	frag[recordHeaderLen+8] = 1 // fragment_offset = 1
	if h, ok := parseClientHello(frag); !ok || h.first {
		t.Fatalf("fragment: %+v %v", h, ok)
	}
	// Truncated anywhere: never a panic, never a cookie past the end.
	full := p.helloBytes(cookie, 1)
	for n := range len(full) {
		if h, ok := parseClientHello(full[:n]); ok && len(h.cookie) > 0 && !bytes.Equal(h.cookie, cookie) {
			t.Fatalf("truncated at %d: cookie %x", n, h.cookie)
		}
	}
	// Epoch 1 is not a ClientHello.
	e1 := bytes.Clone(full)
	e1[4] = 1
	if _, ok := parseClientHello(e1); ok {
		t.Fatal("epoch-1 record parsed as ClientHello")
	}

	got, ok := parseHelloVerifyRequest(hvrBytes(t, cookie))
	if !ok || !bytes.Equal(got, cookie) {
		t.Fatalf("HelloVerifyRequest cookie %x %v", got, ok)
	}
	if _, ok := parseHelloVerifyRequest(full); ok {
		t.Fatal("ClientHello parsed as HelloVerifyRequest")
	}

	cidRec := append([]byte{contentConnectionID, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7}, []byte("CIDCIDCI")...)
	cidRec = append(cidRec, 0, 0)
	if cid, ok := recordCID(cidRec, 8); !ok || string(cid) != "CIDCIDCI" {
		t.Fatalf("CID %q %v", cid, ok)
	}
	if _, ok := recordCID(cidRec[:15], 8); ok {
		t.Fatal("short CID record accepted")
	}
	if _, ok := recordCID(cidRec, 0); ok {
		t.Fatal("CID parsed with CIDs off")
	}
}

// FuzzRecords feeds arbitrary datagrams to the parsers that see untrusted
// bytes before pion does.
func FuzzRecords(f *testing.F) {
	p := &rawPeer{t: &testing.T{}}
	f.Add(p.helloBytes(nil, 0))
	f.Add(p.helloBytes([]byte("cookie"), 1))
	f.Add(hvrBytes(f, []byte("cookie")))
	f.Add([]byte{contentConnectionID, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		if h, ok := parseClientHello(d); ok && len(h.cookie) > 255 {
			t.Fatalf("cookie of %d bytes", len(h.cookie))
		}
		_, _ = parseHelloVerifyRequest(d)
		for _, n := range []int{0, 1, 8, 255} {
			if cid, ok := recordCID(d, n); ok && len(cid) != n {
				t.Fatalf("CID of %d bytes, want %d", len(cid), n)
			}
		}
		_, _, _, _ = plainHandshake(d)
	})
}

func TestFirstRecordLen(t *testing.T) {
	plain := func(body int) []byte { // epoch-0 record with a body of that length
		b := make([]byte, recordHeaderLen+body)
		b[0] = contentHandshake
		b[11], b[12] = byte(body>>8), byte(body)
		return b
	}
	cid := func(cidLen, body int) []byte {
		b := make([]byte, recordHeaderLen+cidLen+body)
		b[0] = contentConnectionID
		b[11+cidLen], b[12+cidLen] = byte(body>>8), byte(body)
		return b
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tc := range []struct {
		name   string
		d      []byte
		cidLen int
		want   int
	}{
		{"empty", nil, 8, 0},
		{"short", []byte{contentConnectionID, 1, 2}, 8, 3},
		{"header only", cid(8, 0), 8, recordHeaderLen + 8},
		{"one plain", plain(10), 8, recordHeaderLen + 10},
		{"two plain", cat(plain(10), plain(4)), 8, recordHeaderLen + 10},
		{"two cid", cat(cid(8, 20), cid(8, 3)), 8, recordHeaderLen + 8 + 20},
		{"cid then garbage", cat(cid(8, 20), []byte{1, 2}), 8, recordHeaderLen + 8 + 20},
		{"cid without cid length", cat(cid(0, 20), plain(1)), 0, recordHeaderLen + 20},
		{"truncated", cid(8, 20)[:30], 8, 30},
		{"length beyond", func() []byte { b := cid(8, 4); b[19] = 0xff; return b }(), 8, recordHeaderLen + 8 + 4},
	} {
		if got := firstRecordLen(tc.d, tc.cidLen); got != tc.want {
			t.Errorf("%s: firstRecordLen = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzFirstRecordLen(f *testing.F) {
	f.Add([]byte{contentConnectionID, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0}, 8)
	f.Fuzz(func(t *testing.T, d []byte, cidLen int) {
		cidLen &= 0xff
		if n := firstRecordLen(d, cidLen); n < 0 || n > len(d) || (len(d) > 0 && n == 0) {
			t.Fatalf("firstRecordLen = %d for %d bytes", n, len(d))
		}
	})
}
