package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Target is what the HTTP load generator sends: POST Path on Addr with the
// body Body(n) for the n-th request (n counts from 0 across all
// connections), plus Header lines ("Name: value\r\n" each).
type Target struct {
	Addr   string
	Path   string
	Header func(n int64) string
	Body   func(n int64) []byte
	// Sent, when set, is called just before request n is written.
	Sent func(n int64, body []byte, at time.Time)
}

// LoadResult is the outcome of one load run.
type LoadResult struct {
	Conns    int
	Offered  float64 // requests per second offered (open loop); 0 for closed loop
	Requests int     // answered requests
	Errors   int     // transport errors (a connection broke or timed out)
	Status   map[int]int
	Elapsed  time.Duration
	Lat      Latencies
	// CPU is the CPU time each process spent during the run (filled in by
	// the harness: the server, nats-server and the load generator).
	CPU map[string]time.Duration
}

// CPUPerRequest is a process's CPU time per answered request.
func (r LoadResult) CPUPerRequest(name string) time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU[name] / time.Duration(r.Requests)
}

// Throughput is answered requests per second.
func (r LoadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// OK counts answers with a 2xx status.
func (r LoadResult) OK() int {
	n := 0
	for code, c := range r.Status {
		if code >= 200 && code < 300 {
			n += c
		}
	}
	return n
}

// ClosedLoop keeps conns connections busy, each sending its next request as
// soon as the previous answer arrived, for d or until max requests were
// sent (max 0: no limit). This is how the issue's "at 64 and 256
// connections" figures are taken.
func ClosedLoop(ctx context.Context, t Target, conns int, d time.Duration, max int64) LoadResult {
	var next atomic.Int64
	take := func() (int64, time.Time, bool) {
		n := next.Add(1) - 1
		if max > 0 && n >= max {
			return 0, time.Time{}, false
		}
		return n, time.Now(), true
	}
	return run(ctx, t, conns, d, take, 0)
}

// OpenLoop sends requests at a fixed rate, spread over conns connections,
// for d. Latency is measured from the moment a request was due, not from
// when a connection became free, so a saturated server shows its queueing
// (no coordinated omission).
func OpenLoop(ctx context.Context, t Target, conns int, rate float64, d time.Duration) LoadResult {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(d / interval)
	var next atomic.Int64
	take := func() (int64, time.Time, bool) {
		n := next.Add(1) - 1
		if n >= total {
			return 0, time.Time{}, false
		}
		due := start.Add(time.Duration(n) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait) // pacing the offered load, not waiting for a condition
		}
		return n, due, true
	}
	return run(ctx, t, conns, d+30*time.Second, take, rate)
}

func run(ctx context.Context, t Target, conns int, d time.Duration, take func() (int64, time.Time, bool), offered float64) LoadResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := LoadResult{Conns: conns, Offered: offered, Status: map[int]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{addr: t.Addr}
			defer c.close()
			status := map[int]int{}
			var lat []time.Duration
			errs := 0
			for ctx.Err() == nil {
				n, due, ok := take()
				if !ok {
					break
				}
				body := t.Body(n)
				if t.Sent != nil {
					t.Sent(n, body, time.Now())
				}
				code, err := c.post(ctx, t.Path, t.Header(n), body)
				if err != nil {
					if dl, _ := ctx.Deadline(); ctx.Err() == nil && time.Until(dl) > time.Second {
						errs++
						if errs == 1 && debugErrors {
							fmt.Fprintln(os.Stderr, "load error:", err)
						}
					}
					continue
				}
				status[code]++
				lat = append(lat, time.Since(due))
			}
			mu.Lock()
			for k, v := range status {
				res.Status[k] += v
			}
			res.Lat = append(res.Lat, lat...)
			res.Errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Requests = len(res.Lat)
	res.Lat.sort()
	return res
}

// client is a minimal HTTP/1.1 keep-alive client: it writes a request and
// reads the status line, headers and a Content-Length or chunked body. It
// costs a fraction of net/http's client, so the machine's cores go to the
// servers under test rather than to the load generator.
type client struct {
	addr string
	conn net.Conn
	r    *bufio.Reader
	buf  bytes.Buffer
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) post(ctx context.Context, path, header string, body []byte) (int, error) {
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > 30*time.Second {
		dl = time.Now().Add(30 * time.Second)
	}
	_ = c.conn.SetDeadline(dl)
	c.buf.Reset()
	fmt.Fprintf(&c.buf, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, c.addr, header, len(body))
	c.buf.Write(body)
	if _, err := c.conn.Write(c.buf.Bytes()); err != nil {
		c.close()
		return 0, err
	}
	code, err := c.readResponse()
	if err != nil {
		c.close()
	}
	return code, err
}

func (c *client) readResponse() (int, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closeConn := -1, false, false
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeConn = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			l, err := c.r.ReadSlice('\n')
			if err != nil {
				return 0, err
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(l)), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("bad chunk size %q", l)
			}
			if _, err := c.r.Discard(int(size) + 2); err != nil {
				return 0, err
			}
			if size == 0 {
				break
			}
		}
	case length >= 0:
		if _, err := c.r.Discard(length); err != nil {
			return 0, err
		}
	default:
		return 0, errors.New("response without a length")
	}
	if closeConn {
		c.close()
	}
	return code, nil
}

var debugErrors = os.Getenv("BENCH_DEBUG") != ""
