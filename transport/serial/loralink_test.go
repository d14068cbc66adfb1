package serial

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

func TestLoRaLinkTwoPorts(t *testing.T) {
	rxPath, txPath := devPath(t, "lora-rx"), devPath(t, "lora-tx")
	rxDev, txDev := newFakeDev(t, rxPath), newFakeDev(t, txPath)
	l, ev := openLink(t, Config{Kind: KindLoRaLink, Device: rxPath, TxDevice: txPath, DeliveryTimeout: time.Hour})
	ev.waitUp(t)
	ev.waitUp(t)
	rx := reader(t, l)

	// §3.b vector: CONNECT from node 5, RSSI -60, SNR 7.
	rxDev.write(hx(t, "7E 00 16 05 FF C4 00 07 40 0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31 74"))
	got := recv(t, rx)
	if got.from != LoRaLinkAddr(5) || !bytes.Equal(got.data, hx(t, "0F 04 04 01 00 3C 73 65 6E 73 6F 72 2D 30 31")) {
		t.Fatalf("%x from %s", got.data, got.from)
	}
	sig, ok := l.Signal(got.from)
	if !ok || sig.RSSI != -60 || sig.SNR != 7 || len(l.Signals()) != 1 {
		t.Fatalf("signal %+v %v", sig, ok)
	}

	// CONNACK goes to the TX modem as the §3.b vector.
	if err := l.WriteTo(hx(t, "03 05 00"), got.from); err != nil {
		t.Fatal(err)
	}
	dec := radios.NewLoRaLinkDecoder(0)
	var pending [][]byte
	fd := txDev.next(dec, &pending)
	wire, _ := radios.AppendLoRaLinkTx(nil, radios.LoRaLinkTx{Dest: fd[0], Type: fd[1], Payload: fd[2:]})
	if !bytes.Equal(wire, hx(t, "7E 00 06 05 40 03 05 00 B2")) {
		t.Fatalf("% X", wire)
	}
	// The next frame waits for the modem's answer: queue a broadcast,
	// then answer ACK for the first and NFC for the second.
	if err := l.Broadcast(binaryNasties); err != nil {
		t.Fatal(err)
	}
	ack, _ := radios.AppendLoRaLinkRx(nil, radios.LoRaLinkRx{Type: radios.LoRaLinkAck})
	txDev.write(ack)
	fd = txDev.next(dec, &pending)
	tx, _ := radios.ParseLoRaLinkTx(fd)
	if tx.Dest != 0xFF || !bytes.Equal(tx.Payload, binaryNasties) {
		t.Fatalf("broadcast %+v", tx)
	}
	nfc, _ := radios.AppendLoRaLinkRx(nil, radios.LoRaLinkRx{Type: radios.LoRaLinkNoFreeCh})
	txDev.write(nfc)
	f := failure(t, l)
	if f.To != LoRaLinkAddr(0xFF) || !errors.Is(f.Err, transport.ErrCongested) {
		t.Fatalf("%+v", f)
	}

	// Binary payload uplink with escapes everywhere.
	frame, _ := radios.AppendLoRaLinkRx(nil, radios.LoRaLinkRx{Src: 0x7E, RSSI: -0x7D, SNR: 0x11, Type: radios.LoRaLinkMQTTSN, Payload: binaryNasties})
	rxDev.write(frame)
	got = recv(t, rx)
	if got.from != LoRaLinkAddr(0x7E) || !bytes.Equal(got.data, binaryNasties) {
		t.Fatalf("%x", got.data)
	}
	if s, _ := l.Signal(got.from); s.RSSI != -0x7D || s.SNR != 0x11 {
		t.Errorf("%+v", s)
	}
	for _, bad := range []transport.Addr{LoRaLinkAddr(0), LoRaLinkAddr(0xFF), NodeAddr(5)} {
		if err := l.WriteTo([]byte{1}, bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if l.MTU() != 244 {
		t.Error(l.MTU())
	}
}

func TestLoRaLinkNoAnswer(t *testing.T) {
	path := devPath(t, "lora")
	dev := newFakeDev(t, path)
	l, ev := openLink(t, Config{Kind: KindLoRaLink, Device: path, DeliveryTimeout: time.Millisecond, TxQueue: 1})
	ev.waitUp(t)
	if err := l.WriteTo([]byte{2, 0x17}, LoRaLinkAddr(9)); err != nil {
		t.Fatal(err)
	}
	f := failure(t, l)
	if f.To != LoRaLinkAddr(9) || !errors.Is(f.Err, ErrDeliveryFailed) {
		t.Fatalf("%+v", f)
	}
	_ = dev
}
