package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// FuzzExchange feeds any bytes to the router's own client as an
// instance's answer: it never panics nor hangs (the fuzz run's timeout),
// and a response it accepts has a body that reads to an end.
func FuzzExchange(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nto the end"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, inst := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer inst.Close()
			if _, err := http.ReadRequest(bufio.NewReader(inst)); err != nil {
				return
			}
			inst.Write(answer)
		}()
		cc := &clientConn{nc: client}
		cc.br = bufio.NewReaderSize(cc, connBufSize)
		cc.bw = bufio.NewWriterSize(client, connBufSize)
		req, _ := http.NewRequest(http.MethodGet, "http://instance/", nil)
		resp, err := cc.exchange(req, &backend{})
		if err == nil {
			io.Copy(io.Discard, resp.Body) // ends: the instance closed
			resp.Body.Close()
		}
		client.Close()
		<-done
	})
}
