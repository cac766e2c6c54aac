package loopauth

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopauth/loopauth/loopauthtest"
)

// Sizes of TestFlowUnderLoad.
const (
	loadJunkRequests = 10000 // refused requests sent while the flow waits
	loadJunkConns    = 50    // concurrent keep-alive connections sending them
	loadStalledConns = 500   // connections that send nothing or half a request line
	loadHeapGrowth   = 16 << 20
)

// loadBigQuery makes a query near (once) or over (twice) the server's
// limit.
var loadBigQuery = "code=" + strings.Repeat("x", 12<<10)

// junkRequest returns the i-th request of the load test: never the right
// state, in every way the server refuses.
func junkRequest(i int, host string) string {
	bigQuery := loadBigQuery
	target, h, method := "/callback?code=x&state="+strings.Repeat("B", 43), host, "GET"
	switch i % 9 {
	case 1: // no state
		target = "/callback?code=x"
	case 2: // DNS rebinding
		h = "attacker.example:" + host[strings.LastIndexByte(host, ':')+1:]
	case 3:
		target = "/favicon.ico"
	case 4: // "/" is the short URL: a redirect that cannot end the flow
		target = "/robots.txt"
	case 5: // big, under the query limit
		target = "/callback?state=wrong&" + bigQuery
	case 6: // over the query limit
		target = "/callback?state=wrong&" + bigQuery + bigQuery
	case 7: // a provider error with a wrong state
		target = "/callback?error=access_denied&error_description=no&state=wrong"
	case 8:
		method = "POST"
	}
	return method + " " + target + " HTTP/1.1\r\nHost: " + h + "\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
}

// junkWorker sends requests over one keep-alive connection, reconnecting
// whenever the server closes it (it answers every request with
// Connection: close). It counts answers by class.
type junkWorker struct {
	addr, host string
	conn       net.Conn
	r          *bufio.Reader
}

func (w *junkWorker) send(i int) (status int, err error) {
	if w.conn == nil {
		if w.conn, err = net.Dial("tcp4", w.addr); err != nil {
			return 0, err
		}
		w.r = bufio.NewReader(w.conn)
	}
	_ = w.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err = io.WriteString(w.conn, junkRequest(i, w.host)); err == nil {
		var resp *http.Response
		if resp, err = http.ReadResponse(w.r, nil); err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
			if resp.Close {
				w.close()
			}
		}
	}
	if err != nil {
		w.close()
	}
	return status, err
}

func (w *junkWorker) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// stalledPeers are connections that send nothing (even i) or half a
// request line (odd i) and then stall; the client keeps them open until
// close, whatever the server does with them.
type stalledPeers []net.Conn

func (s *stalledPeers) open(addr string, n int) error {
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			return err
		}
		*s = append(*s, c)
		if i%2 == 1 {
			if _, err := io.WriteString(c, "GET /callback?state="); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s stalledPeers) close() {
	for _, c := range s {
		c.Close()
	}
}

// heapAlloc is the live heap after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFlowUnderLoad covers C-23 and C-36 under load: while a flow waits,
// 10,000 refused requests over 50 concurrent connections, and 500
// connections held open that send nothing or half a request line, neither
// end the flow nor delay the real callback; no junk request gets a 2xx,
// the heap stays bounded, the refusal log stays short, and every goroutine
// is gone when the flow returns, though the stalled connections are still
// open.
func TestFlowUnderLoad(t *testing.T) {
	p := loopauthtest.NewProvider(t)
	logs := &recordHandler{}
	var port int
	var junkTime, callbackTime time.Duration
	var heapDuring atomic.Uint64 // the largest sample
	sampleHeap := func() {
		h := heapAlloc()
		for old := heapDuring.Load(); h > old && !heapDuring.CompareAndSwap(old, h); old = heapDuring.Load() {
		}
	}
	var statuses [6]atomic.Int64 // by status class; [0] transport errors
	// The stalled connections stay open until after the flow has
	// returned: its teardown alone must end the server's side of them.
	var stalled stalledPeers
	defer stalled.close()
	browser := func(ctx context.Context, authURL string) error {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if err := stalled.open(addr, loadStalledConns); err != nil {
			return err
		}

		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for k := 0; k < loadJunkConns; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &junkWorker{addr: addr, host: addr}
				defer w.close()
				for i := int(next.Add(1)); i <= loadJunkRequests; i = int(next.Add(1)) {
					if i == loadJunkRequests/2 {
						sampleHeap() // in the thick of it
					}
					status, err := w.send(i)
					if err != nil {
						statuses[0].Add(1)
						continue
					}
					statuses[min(status/100, 5)].Add(1)
				}
			}()
		}
		wg.Wait()
		junkTime = time.Since(start)

		// The real browser, behind as many fresh stalled connections: the
		// server has closed the first ones by now (first-byte and header
		// timeouts, or to make room).
		if err := stalled.open(addr, loadStalledConns); err != nil {
			return err
		}
		sampleHeap()
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequestWithContext(ctx, "GET", authURL, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		req, _ = http.NewRequestWithContext(ctx, "GET", resp.Header.Get("Location"), nil)
		sent := time.Now()
		resp, err = client.Do(req)
		callbackTime = time.Since(sent)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the real callback got %d", resp.StatusCode)
		}
		return nil
	}
	c := flowClient(t, p, browser, func(b *CLITokenClientBuilder) {
		b.Timeout(2 * time.Minute).Logger(slog.New(logs)).OnServerReady(func(p int) { port = p })
	})

	before := heapAlloc()
	check := noLeaks(t)
	ts, err := c.RunAuthorizationFlow(context.Background())
	check()
	after := heapAlloc()
	if err != nil {
		t.Fatalf("the flow did not survive the load: %v", err)
	}
	if ts.AccessToken() == "" {
		t.Fatal("no access token")
	}
	t.Logf("%d junk requests over %d connections in %v (%d cut by the server to make room); real callback answered in %v; heap %d KiB before, %d KiB during, %d KiB after",
		loadJunkRequests, loadJunkConns, junkTime, statuses[0].Load(), callbackTime, before>>10, heapDuring.Load()>>10, after>>10)
	if callbackTime > time.Second {
		t.Errorf("the real callback took %v behind the load, want under 1s", callbackTime)
	}
	if n := statuses[2].Load(); n != 0 {
		t.Errorf("%d junk requests got a 2xx", n)
	}
	// A junk connection may be closed to make room for a newcomer before
	// its request is read; every answer is a refusal.
	if got := statuses[4].Load() + statuses[0].Load(); got != loadJunkRequests {
		t.Errorf("%d of %d junk requests got a 4xx or no answer (1xx %d, 3xx %d, 5xx %d)", got, loadJunkRequests,
			statuses[1].Load(), statuses[3].Load(), statuses[5].Load())
	}
	for name, heap := range map[string]uint64{"during": heapDuring.Load(), "after": after} {
		if heap > before && heap-before >= loadHeapGrowth {
			t.Errorf("heap grew by %d KiB %s the load, want under %d KiB", (heap-before)>>10, name, loadHeapGrowth>>10)
		}
	}
	refusalLines := 0
	for _, line := range logs.lines() {
		if strings.Contains(line, "refused") {
			refusalLines++
		}
	}
	// 8 one by one, then summaries once a minute and one at the end.
	if limit := refusalsLogged + 1 + int(2*time.Minute/refusalSummaryEvery); refusalLines > limit {
		t.Errorf("%d log lines about refused requests, want at most %d", refusalLines, limit)
	}
}
