package listeners

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/sngate/sngate/broker/packets"
)

// wsClientConn runs a raw MQTT client over a gorilla WebSocket client.
type wsClientConn struct {
	net.Conn
	t *wsTransport
}

func (c *wsClientConn) Read(p []byte) (int, error)         { return c.t.Read(p) }
func (c *wsClientConn) Write(p []byte) (int, error)        { return c.t.Write(p) }
func (c *wsClientConn) Close() error                       { return c.t.Close() }
func (c *wsClientConn) SetReadDeadline(d time.Time) error  { return c.t.SetReadDeadline(d) }
func (c *wsClientConn) SetWriteDeadline(d time.Time) error { return c.t.SetWriteDeadline(d) }

func dialWS(t *testing.T, url string, d *websocket.Dialer, version byte) (*raw, *websocket.Conn, *http.Response) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	d.Subprotocols = []string{"mqtt"}
	d.HandshakeTimeout = wait
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &wsClientConn{Conn: ws.NetConn(), t: &wsTransport{ws: ws}}
	return &raw{t: t, c: c, br: bufio.NewReader(c), version: version}, ws, resp
}

func TestWebSocket(t *testing.T) {
	srv := newBroker(t, nil)
	_, addr := startListener(t, srv, Config{Kind: KindWS})
	url := "ws://" + addr + "/mqtt"

	r, ws, resp := dialWS(t, url, nil, packets.V5)
	if resp.Header.Get("Sec-WebSocket-Protocol") != "mqtt" || ws.Subprotocol() != "mqtt" {
		t.Fatalf("subprotocol %q", ws.Subprotocol())
	}
	// A CONNECT split over two WebSocket messages.
	b, _ := (&packets.Connect{Version: packets.V5, ClientID: "ws-raw", CleanStart: true, KeepAlive: 30}).Append(nil, packets.V5)
	r.write(b[:5])
	r.write(b[5:])
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02X", ack.ReasonCode)
	}
	// SUBSCRIBE and PUBLISH in one message.
	b, _ = (&packets.Subscribe{PacketID: 1, Filters: []packets.SubOption{{Filter: "ws/#", QoS: 1}}}).Append(nil, packets.V5)
	b, _ = (&packets.Publish{Topic: "ws/t", QoS: 1, PacketID: 2, Payload: []byte("over ws")}).Append(b, packets.V5)
	r.write(b)
	seen := map[byte]bool{}
	for len(seen) < 3 {
		p, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Type()] = true
		if pub, ok := p.(*packets.Publish); ok && string(pub.Payload) != "over ws" {
			t.Fatalf("got %q", pub.Payload)
		}
	}
	if !seen[packets.SUBACK] || !seen[packets.PUBACK] || !seen[packets.PUBLISH] {
		t.Fatalf("got %v", seen)
	}

	// paho.mqtt.golang speaks MQTT 3.1.1 over ws:// and talks to TCP clients.
	_, tcpAddr := startListener(t, srv, Config{Name: "tcp"})
	c := dialV3(t, url, "ws-paho", nil)
	ch := v3sub(t, c, "mixed/#", 1)
	tcp := dialV3(t, "tcp://"+tcpAddr, "tcp-paho", nil)
	waitTok(t, tcp.Publish("mixed/x", 1, false, "from tcp"))
	if m := recvV3(t, ch); string(m.Payload()) != "from tcp" {
		t.Fatalf("got %q", m.Payload())
	}

	// A text frame ends the connection.
	r, ws, _ = dialWS(t, url, nil, packets.V311)
	r.connect(&packets.Connect{ClientID: "texter", CleanStart: true})
	if err := ws.WriteMessage(websocket.TextMessage, []byte{0xC0, 0x00}); err != nil {
		t.Fatal(err)
	}
	if got := r.expectClosed(); len(got) != 0 {
		t.Fatalf("answered a text frame with %v", got)
	}
	// Other paths are not the MQTT endpoint.
	resp, err := http.Get("http://" + addr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /other: %d", resp.StatusCode)
	}
}

func TestWebSocketTLS(t *testing.T) {
	pki := newPKI(t)
	srv := certBroker(t)
	_, addr := startListener(t, srv, Config{Kind: KindWSS, Path: "/broker", CertFile: pki.certFile,
		KeyFile: pki.keyFile, CAFile: pki.caFile})
	url := "wss://" + addr + "/broker"
	// With a client certificate: its subject is the user name.
	r, _, _ := dialWS(t, url, &websocket.Dialer{TLSClientConfig: pki.clientTLS(&pki.client)}, packets.V5)
	r.connect(&packets.Connect{ClientID: "wss-1", CleanStart: true})
	r.subscribe(1, packets.SubOption{Filter: "wss", QoS: 0})
	r.send(&packets.Publish{Topic: "wss", Payload: []byte("ok")})
	if p := r.expect(packets.PUBLISH).(*packets.Publish); string(p.Payload) != "ok" {
		t.Fatalf("got %q", p.Payload)
	}
	// Without: anonymous, refused by this broker.
	r, _, _ = dialWS(t, url, &websocket.Dialer{TLSClientConfig: pki.clientTLS(nil)}, packets.V5)
	r.send(&packets.Connect{Version: packets.V5, ClientID: "wss-2", CleanStart: true})
	if ack := r.expect(packets.CONNACK).(*packets.Connack); ack.ReasonCode != packets.NotAuthorized {
		t.Fatalf("CONNACK 0x%02X", ack.ReasonCode)
	}
	// paho.mqtt.golang over wss.
	c := dialV3(t, url, "wss-paho", func(o *mqtt.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: pki.pool, ServerName: "localhost", Certificates: []tls.Certificate{pki.client}})
	})
	waitTok(t, c.Publish("wss", 1, false, "paho"))
}
