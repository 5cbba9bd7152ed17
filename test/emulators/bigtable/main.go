// Google's Bigtable emulator (cloud.google.com/go/bigtable/bttest), for machines without
// google-cloud-cli's cbtemulator. Same flags as cbtemulator. Built by
// test/emulators/bigtable-emulator.ts from Debian's golang-google-cloud-dev:
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o .cache/bigtable-emulator/cbtemulator ./test/emulators/bigtable
package main

import (
	"flag"
	"fmt"
	"log"

	"cloud.google.com/go/bigtable/bttest"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8086, "port to listen on")
	flag.Parse()
	srv, err := bttest.NewServer(fmt.Sprintf("%s:%d", *host, *port))
	if err != nil {
		log.Fatalf("failed to start emulator: %v", err)
	}
	fmt.Printf("Cloud Bigtable emulator running on %s\n", srv.Addr)
	select {}
}
