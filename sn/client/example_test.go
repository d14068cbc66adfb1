package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/sn/client"
)

func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "udp", "127.0.0.1:1884", client.Options{
		ClientID:     "sensor-01",
		CleanSession: true,
		OnPublish: func(m client.Message) {
			fmt.Printf("%s: %s\n", m.Topic, m.Payload)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		log.Fatal(err) // a *client.ReturnCodeError when the gateway refuses
	}
	if _, _, err := c.Subscribe(ctx, client.Topic("home/cmd/#"), sn.QoS1); err != nil {
		log.Fatal(err)
	}
	if err := c.Publish(ctx, client.Topic("home/temp"), sn.QoS1, false, []byte("21.5")); err != nil {
		log.Fatal(err)
	}
	// Sleep for ten minutes, then collect what the gateway buffered.
	if err := c.Sleep(ctx, 10*time.Minute); err != nil {
		log.Fatal(err)
	}
	n, err := c.Wake(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "messages while asleep")
	_ = c.Disconnect(ctx)
}
