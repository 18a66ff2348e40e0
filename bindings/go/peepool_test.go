package peepool_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	peepool "github.com/peepool/peepool/bindings/go"
)

type backend struct {
	name  string
	url   string // base URL, options appended with opt()
	blob  string // column type for binary data
	float string
}

// ph is the i-th (from 1) placeholder of the backend.
func (b backend) ph(i int) string {
	if b.name == "postgres" {
		return fmt.Sprintf("$%d", i)
	}
	return "?"
}

func (b backend) opt(options string) string {
	if options == "" {
		return b.url
	}
	if strings.Contains(b.url, "?") {
		return b.url + "&" + options
	}
	return b.url + "?" + options
}

var (
	sqliteB   = backend{"sqlite", "sqlite::memory:", "BLOB", "REAL"}
	postgresB = backend{"postgres", "postgres://postgres@127.0.0.1:5432/test", "BYTEA", "DOUBLE PRECISION"}
	mysqlB    = backend{"mysql", "mysql://root@127.0.0.1:3306/test", "LONGBLOB", "DOUBLE"}
)

func serversRequired() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PEEPOOL_REQUIRE_SERVERS") == "1"
}

var (
	reachOnce sync.Once
	reachErr  = map[string]error{}
)

// needServer skips (or fails, when servers are required) when b is a server
// that cannot be reached.
func needServer(t *testing.T, b backend) {
	t.Helper()
	if b.name == "sqlite" {
		return
	}
	reachOnce.Do(func() {
		for _, s := range []backend{postgresB, mysqlB} {
			p, err := peepool.Open(s.opt("connect_timeout=3"))
			if err == nil {
				var c *peepool.Conn
				c, err = p.Conn(context.Background())
				if err == nil {
					_ = c.Release()
				}
				p.Close()
			}
			reachErr[s.name] = err
		}
	})
	if err := reachErr[b.name]; err != nil {
		if serversRequired() {
			t.Fatalf("%s unreachable and servers are required: %v", b.name, err)
		}
		t.Skipf("%s unreachable: %v", b.name, err)
	}
}

// each runs f as a subtest against every backend.
func each(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range []backend{sqliteB, postgresB, mysqlB} {
		b := b
		t.Run(b.name, func(t *testing.T) {
			needServer(t, b)
			f(t, b)
		})
	}
}

func open(t *testing.T, url string) *peepool.Pool {
	t.Helper()
	p, err := peepool.Open(url)
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func conn(t *testing.T, p *peepool.Pool) *peepool.Conn {
	t.Helper()
	c, err := p.Conn(context.Background())
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantStatus(t *testing.T, err error, sentinel error) *peepool.Error {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("want %v, got %v", sentinel, err)
	}
	var pe *peepool.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%v is not a *peepool.Error", err)
	}
	return pe
}

var bg = context.Background()

func TestRoundTrip(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		p := open(t, b.opt("max_connections=2"))
		c := conn(t, p)
		defer c.Release()
		_, err := c.Exec(bg, fmt.Sprintf("CREATE TEMPORARY TABLE go_rt (i BIGINT, f %s, s TEXT, b %s, n TEXT, u BIGINT, k BIGINT)", b.float, b.blob))
		must(t, err)
		blob := []byte{0, 1, 2, 0xff, 'x', 0}
		ins := fmt.Sprintf("INSERT INTO go_rt VALUES (%s, %s, %s, %s, %s, %s, %s)", b.ph(1), b.ph(2), b.ph(3), b.ph(4), b.ph(5), b.ph(6), b.ph(7))
		n, err := c.Exec(bg, ins, int64(math.MinInt64), 2.5, "héllo ✓", blob, nil, uint32(4000000000), true)
		must(t, err)
		if n != 1 {
			t.Fatalf("affected %d", n)
		}
		var nilStr *string
		s8 := "eight"
		_, err = c.Exec(bg, ins, int8(-8), float32(0.5), &s8, []byte{}, nilStr, uint64(math.MaxInt64), false)
		must(t, err)

		rows, err := c.Query(bg, "SELECT i, f, s, b, n, u, k FROM go_rt ORDER BY i")
		must(t, err)
		defer rows.Close()
		if got := strings.Join(rows.Columns(), ","); got != "i,f,s,b,n,u,k" {
			t.Fatalf("columns %q", got)
		}
		if !rows.Next() {
			t.Fatal("no first row")
		}
		var (
			i  int64
			f  float64
			s  string
			bb []byte
			n1 *string
			u  int
			k  bool
		)
		must(t, rows.Scan(&i, &f, &s, &bb, &n1, &u, &k))
		wantBlob := string(blob)
		if i != math.MinInt64 || f != 2.5 || s != "héllo ✓" || string(bb) != wantBlob || n1 != nil || u != 4000000000 || !k {
			t.Fatalf("row 1: %v %v %q %v %v %v %v", i, f, s, bb, n1, u, k)
		}
		var ai, af, as, ab, an any
		var ns sql.NullString
		var ni sql.NullInt64
		must(t, rows.Scan(&ai, &af, &as, &ab, &an, &ns, &ni))
		if ai != int64(math.MinInt64) || af != 2.5 {
			t.Fatalf("row 1 as any: %#v %#v", ai, af)
		}
		if as != "héllo ✓" || string(ab.([]byte)) != wantBlob || an != nil {
			t.Fatalf("row 1 as any: %#v %#v %#v %#v %#v", ai, af, as, ab, an)
		}
		if !ns.Valid || ns.String != "4000000000" || !ni.Valid || ni.Int64 != 1 {
			t.Fatalf("row 1 Scanners: %#v %#v", ns, ni)
		}
		if !rows.Next() {
			t.Fatal("no second row")
		}
		var pi *int64
		var pf *float64
		var ps, pn *string
		var pb *[]byte
		var pu int64
		var pk *bool
		must(t, rows.Scan(&pi, &pf, &ps, &pb, &pn, &pu, &pk))
		wantEmpty := ""
		if *pi != -8 || *pf != 0.5 || *ps != "eight" || string(*pb) != wantEmpty || pn != nil || pu != math.MaxInt64 || *pk {
			t.Fatalf("row 2: %v %v %v %v %v %v %v", *pi, *pf, *ps, *pb, pn, pu, *pk)
		}
		if rows.Next() {
			t.Fatal("a third row")
		}
		if err := rows.Scan(&i); err == nil {
			t.Fatal("Scan after the end succeeded")
		}

		// Booleans from the database itself.
		rows, err = c.Query(bg, "SELECT 1 = 1, 1 = 0")
		must(t, err)
		var t1, f1 bool
		if !rows.Next() {
			t.Fatal("no row")
		}
		must(t, rows.Scan(&t1, &f1))
		rows.Close()
		if !t1 || f1 {
			t.Fatalf("booleans %v %v", t1, f1)
		}
	})
}

func TestNullAndConversion(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		p := open(t, b.url)
		c := conn(t, p)
		defer c.Release()
		rows, err := c.Query(bg, fmt.Sprintf("SELECT %s, %s", b.ph(1), b.ph(2)), nil, "abc")
		must(t, err)
		defer rows.Close()
		if !rows.Next() {
			t.Fatal("no row")
		}
		var s string
		var x int64
		wantStatus(t, rows.Scan(&s, new(string)), peepool.ErrConversion)
		err = rows.Scan(new(any), &x)
		pe := wantStatus(t, err, peepool.ErrConversion)
		if !strings.Contains(pe.Message, "abc") {
			t.Fatalf("conversion message does not show the value: %q", pe.Message)
		}
		var ns sql.NullString
		var a any
		must(t, rows.Scan(&ns, &a))
		if ns.Valid {
			t.Fatal("NULL scanned as valid")
		}
		if fmt.Sprint(a) != "abc" {
			t.Fatalf("any %#v", a)
		}
	})
}

func TestParamErrors(t *testing.T) {
	p := open(t, "sqlite::memory:")
	c := conn(t, p)
	defer c.Release()
	_, err := c.Exec(bg, "SELECT ?", uint64(math.MaxUint64))
	pe := wantStatus(t, err, peepool.ErrInvalidArgument)
	if !strings.Contains(pe.Message, "parameter 1") {
		t.Fatalf("message %q", pe.Message)
	}
	_, err = c.Exec(bg, "SELECT ?, ?", 1, struct{}{})
	wantStatus(t, err, peepool.ErrInvalidArgument)
	_, err = c.Exec(bg, "SELECT 1\x00")
	wantStatus(t, err, peepool.ErrInvalidArgument)
	_, err = c.Exec(bg, "SELECT ?") // missing parameter: the library says so
	if err == nil {
		t.Fatal("missing parameter accepted")
	}

	// time.Time goes as RFC 3339 text.
	tm := time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC)
	rows, err := c.Query(bg, "SELECT ?", tm)
	must(t, err)
	defer rows.Close()
	rows.Next()
	var s string
	must(t, rows.Scan(&s))
	if s != "2024-02-29T13:14:15Z" {
		t.Fatalf("time as %q", s)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := peepool.Open("sqlite::memory:?no_such_option=1")
	pe := wantStatus(t, err, peepool.ErrConfig)
	if !strings.Contains(pe.Message, "no_such_option") {
		t.Fatalf("message %q", pe.Message)
	}
	_, err = peepool.Open("nosuch://x")
	wantStatus(t, err, peepool.ErrConfig)
}

func TestExhaustedWithoutTimeout(t *testing.T) {
	p := open(t, "sqlite::memory:?max_connections=1")
	c := conn(t, p)
	start := time.Now()
	_, err := p.Conn(bg)
	pe := wantStatus(t, err, peepool.ErrExhausted)
	if time.Since(start) > time.Second {
		t.Fatal("Conn without timeout waited")
	}
	if !strings.Contains(pe.Message, "in_use=1") {
		t.Fatalf("message %q", pe.Message)
	}
	must(t, c.Release())
	c2 := conn(t, p)
	must(t, c2.Release())
}

func TestContextDeadlineWhileWaiting(t *testing.T) {
	for _, url := range []string{"sqlite::memory:?max_connections=1", "sqlite::memory:?max_connections=1&timeout=30", "sqlite::memory:?max_connections=1&timeout=inf"} {
		t.Run(url, func(t *testing.T) {
			p := open(t, url)
			c := conn(t, p)
			ctx, cancel := context.WithTimeout(bg, 80*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := p.Conn(ctx)
			el := time.Since(start)
			wantStatus(t, err, peepool.ErrExhausted)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("not DeadlineExceeded: %v", err)
			}
			if el < 70*time.Millisecond || el > 5*time.Second {
				t.Fatalf("waited %v", el)
			}

			// Cancellation.
			ctx2, cancel2 := context.WithCancel(bg)
			go func() { time.Sleep(30 * time.Millisecond); cancel2() }()
			_, err = p.Conn(ctx2)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("not Canceled: %v", err)
			}
			// Already done: fails at once.
			_, err = p.Conn(ctx2)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("not Canceled: %v", err)
			}

			// A connection released while waiting is taken.
			go func() { time.Sleep(50 * time.Millisecond); c.Release() }()
			ctx3, cancel3 := context.WithTimeout(bg, 10*time.Second)
			defer cancel3()
			c2, err := p.Conn(ctx3)
			must(t, err)
			must(t, c2.Release())

			// Abandoned C-level waits hand their connection back.
			deadline := time.Now().Add(5 * time.Second)
			for p.Stats().InUse != 0 || p.Stats().Waiting != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("connections left out: %+v", p.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestURLTimeoutExpires(t *testing.T) {
	p := open(t, "sqlite::memory:?max_connections=1&timeout=0.1")
	c := conn(t, p)
	defer c.Release()
	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := p.Conn(ctx)
	wantStatus(t, err, peepool.ErrExhausted)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the URL timeout should have ended the wait, not ctx")
	}
	if el := time.Since(start); el < 90*time.Millisecond || el > 5*time.Second {
		t.Fatalf("waited %v", el)
	}
	if p.Stats().Timeouts != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	p, err := peepool.Open("sqlite::memory:?max_connections=1&timeout=inf")
	must(t, err)
	c := conn(t, p)
	errs := make(chan error, 2)
	go func() { _, err := p.Conn(bg); errs <- err }()
	go func() {
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		defer cancel()
		_, err := p.Conn(ctx)
		errs <- err
	}()
	for p.Stats().Waiting != 2 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	for i := 0; i < 2; i++ {
		wantStatus(t, <-errs, peepool.ErrClosed)
	}
	_, err = c.Exec(bg, "SELECT 1")
	wantStatus(t, err, peepool.ErrInvalidHandle)
	wantStatus(t, c.Release(), peepool.ErrClosed)
	_, err = p.Conn(bg)
	wantStatus(t, err, peepool.ErrClosed)
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if (p.Stats() != peepool.Stats{}) {
		t.Fatal("stats of a closed pool")
	}
}

func TestReleaseAndClose(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		p := open(t, b.opt("max_connections=1"))
		c := conn(t, p)
		must(t, c.Release())
		wantStatus(t, c.Release(), peepool.ErrInvalidHandle)
		_, err := c.Exec(bg, "SELECT 1")
		wantStatus(t, err, peepool.ErrInvalidHandle)

		c2 := conn(t, p)
		must(t, c2.Close())
		wantStatus(t, c2.Close(), peepool.ErrInvalidHandle)
		wantStatus(t, c2.Release(), peepool.ErrInvalidHandle)
		st := p.Stats()
		if st.ClosedManual != 1 || st.Open != 0 || st.Checkouts != 2 {
			t.Fatalf("stats %+v", st)
		}
		c3 := conn(t, p) // the place is free again
		must(t, c3.Release())
	})
}

func TestTransactions(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		p := open(t, b.opt("max_connections=1"))
		c := conn(t, p)
		_, err := c.Exec(bg, "CREATE TEMPORARY TABLE go_tx (v BIGINT)")
		must(t, err)
		ins := "INSERT INTO go_tx VALUES (" + b.ph(1) + ")"
		count := func(c *peepool.Conn) int64 {
			rows, err := c.Query(bg, "SELECT COUNT(*) FROM go_tx")
			must(t, err)
			defer rows.Close()
			rows.Next()
			var n int64
			must(t, rows.Scan(&n))
			return n
		}
		must(t, c.Begin(bg))
		_, err = c.Exec(bg, ins, 1)
		must(t, err)
		must(t, c.Rollback())
		if n := count(c); n != 0 {
			t.Fatalf("after rollback %d", n)
		}
		must(t, c.Begin(bg))
		_, err = c.Exec(bg, ins, 2)
		must(t, err)
		must(t, c.Commit())
		if n := count(c); n != 1 {
			t.Fatalf("after commit %d", n)
		}
		// Released inside a transaction: rolled back (same connection again,
		// max_connections=1, so the temporary table is still there).
		must(t, c.Begin(bg))
		_, err = c.Exec(bg, ins, 3)
		must(t, err)
		must(t, c.Release())
		c = conn(t, p)
		defer c.Release()
		if n := count(c); n != 1 {
			t.Fatalf("release did not roll back: %d", n)
		}
	})
}

func TestStats(t *testing.T) {
	p := open(t, "sqlite::memory:?max_connections=3")
	a, b := conn(t, p), conn(t, p)
	st := p.Stats()
	if st.MaxConnections != 3 || st.Open != 2 || st.InUse != 2 || st.Idle != 0 || st.Checkouts != 2 || st.OpenedTotal != 2 {
		t.Fatalf("stats %+v", st)
	}
	must(t, a.Release())
	n, err := p.CloseIdle()
	must(t, err)
	if n != 1 {
		t.Fatalf("CloseIdle closed %d", n)
	}
	must(t, p.CloseAll())
	must(t, b.Release()) // condemned: closes now
	st = p.Stats()
	if st.Open != 0 || st.ClosedCleared != 2 || st.ClosedTotal != 2 {
		t.Fatalf("stats %+v", st)
	}
	c := conn(t, p)
	n, err = p.CloseStale(0)
	must(t, err)
	if n != 1 {
		t.Fatalf("CloseStale reclaimed %d", n)
	}
	wantStatus(t, c.Release(), peepool.ErrInvalidHandle)
}

func TestConcurrentGoroutines(t *testing.T) {
	each(t, func(t *testing.T, b backend) {
		p := open(t, b.opt("max_connections=4&timeout=30"))
		setup := conn(t, p)
		_, err := setup.Exec(bg, "DROP TABLE IF EXISTS go_conc")
		must(t, err)
		_, err = setup.Exec(bg, "CREATE TABLE go_conc (g BIGINT, v TEXT)")
		must(t, err)
		must(t, setup.Release())
		defer func() {
			c := conn(t, p)
			c.Exec(bg, "DROP TABLE go_conc")
			c.Release()
		}()
		const G, N = 32, 10
		var wg sync.WaitGroup
		errs := make(chan error, G)
		for g := 0; g < G; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < N; i++ {
					ctx, cancel := context.WithTimeout(bg, 30*time.Second)
					c, err := p.Conn(ctx)
					cancel()
					if err != nil {
						errs <- err
						return
					}
					_, err = c.Exec(bg, "INSERT INTO go_conc VALUES ("+b.ph(1)+", "+b.ph(2)+")", g, fmt.Sprint("g", g, "i", i))
					if err == nil {
						var rows *peepool.Rows
						rows, err = c.Query(bg, "SELECT COUNT(*) FROM go_conc WHERE g = "+b.ph(1), g)
						if err == nil {
							var n int64
							rows.Next()
							err = rows.Scan(&n)
							rows.Close()
							if err == nil && n != int64(i+1) {
								err = fmt.Errorf("goroutine %d sees %d rows, want %d", g, n, i+1)
							}
						}
					}
					if rerr := c.Release(); err == nil {
						err = rerr
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		st := p.Stats()
		if st.Open > 4 || st.OpenedTotal > 4 || st.InUse != 0 || st.Checkouts != G*N+1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestSQLState(t *testing.T) {
	want := map[string]string{"sqlite": "", "postgres": "42P01", "mysql": "42S02"}
	each(t, func(t *testing.T, b backend) {
		p := open(t, b.url)
		c := conn(t, p)
		defer c.Release()
		_, err := c.Exec(bg, "SELECT * FROM go_no_such_table")
		pe := wantStatus(t, err, peepool.ErrDatabase)
		if pe.SQLState == "" {
			t.Fatalf("no SQLSTATE: %v", pe)
		}
		if w := want[b.name]; w != "" && pe.SQLState != w {
			t.Fatalf("SQLSTATE %q, want %q", pe.SQLState, w)
		}
		if !strings.Contains(pe.Message, "go_no_such_table") {
			t.Fatalf("message %q", pe.Message)
		}
		if !strings.Contains(err.Error(), pe.SQLState) {
			t.Fatalf("Error() %q lacks the SQLSTATE", err.Error())
		}
		// The connection still works after the error.
		_, err = c.Exec(bg, "SELECT 1")
		must(t, err)
	})
}

// Many goroutines making different errors at once: each must read its own
// message (the library's last error is per OS thread).
func TestErrorMessagesPerGoroutine(t *testing.T) {
	p := open(t, "sqlite::memory:?max_connections=0")
	const G, N = 64, 40
	var wg sync.WaitGroup
	errs := make(chan error, G)
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			c, err := p.Conn(bg)
			if err != nil {
				errs <- err
				return
			}
			defer c.Release()
			for i := 0; i < N; i++ {
				name := fmt.Sprintf("missing_%d_%d", g, i)
				_, err := c.Exec(bg, "SELECT * FROM "+name)
				var pe *peepool.Error
				if !errors.As(err, &pe) || !strings.Contains(pe.Message, name) || pe.Status != peepool.StatusDatabase {
					errs <- fmt.Errorf("goroutine %d: want an error naming %s, got %v", g, name, err)
					return
				}
				// A success in between must not leave a stale message.
				if _, err := c.Exec(bg, "SELECT 1"); err != nil {
					errs <- err
					return
				}
				opt := fmt.Sprintf("bogus_%d_%d", g, i)
				_, err = peepool.Open("sqlite::memory:?" + opt + "=1")
				if !errors.As(err, &pe) || !strings.Contains(pe.Message, opt) || pe.Status != peepool.StatusConfig {
					errs <- fmt.Errorf("goroutine %d: want an error naming %s, got %v", g, opt, err)
					return
				}
				if i%8 == 0 {
					time.Sleep(time.Microsecond) // let the scheduler move goroutines
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBusy(t *testing.T) {
	// Two goroutines on one connection: one runs, the other gets ErrBusy or
	// runs after it; never a data race or a crash.
	p := open(t, "sqlite::memory:")
	c := conn(t, p)
	defer c.Release()
	var wg sync.WaitGroup
	var busy, ok int64
	var mu sync.Mutex
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				_, err := c.Exec(bg, "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM r WHERE x < 2000) SELECT COUNT(*) FROM r")
				mu.Lock()
				if err == nil {
					ok++
				} else if errors.Is(err, peepool.ErrBusy) {
					busy++
				} else {
					t.Error(err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok == 0 {
		t.Fatal("no call succeeded")
	}
	t.Logf("ok=%d busy=%d", ok, busy)
}

func TestStatusStrings(t *testing.T) {
	if !strings.HasPrefix(peepool.StatusExhausted.String(), "POOL_ERR_EXHAUSTED") {
		t.Fatalf("%q", peepool.StatusExhausted.String())
	}
	if peepool.Version() == "" {
		t.Fatal("no version")
	}
}

// SetLogger receives the pool's debug events, from the maintenance thread as
// well as from the calling goroutine, until it is removed.
func TestSetLogger(t *testing.T) {
	p, err := peepool.Open("sqlite::memory:?min_connections=1&max_connections=2")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var mu sync.Mutex
	var lines []string
	badLevel := 0
	err = p.SetLogger(func(level peepool.LogLevel, msg string) {
		mu.Lock()
		defer mu.Unlock()
		if level < peepool.LogError || level > peepool.LogDebug {
			badLevel++
		}
		lines = append(lines, level.String()+": "+msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		c, err := p.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			err = c.Release()
		} else {
			err = c.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	n := len(lines)
	got := strings.Join(lines, "\n")
	mu.Unlock()
	if n < 3 || badLevel != 0 || !strings.Contains(got, "debug: ") {
		t.Fatalf("want >= 3 debug lines with valid levels, got %d (bad levels %d):\n%s", n, badLevel, got)
	}
	// A call already in flight (the maintenance thread's) may still land
	// while SetLogger runs; none may start once it has returned.
	if err := p.SetLogger(nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n = len(lines)
	mu.Unlock()
	c, err := p.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c, err = p.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != n {
		t.Fatalf("logger called after removal: %s", strings.Join(lines[n:], "\n"))
	}
}

func TestSetLoggerOnClosedPool(t *testing.T) {
	p, err := peepool.Open("sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := p.SetLogger(func(peepool.LogLevel, string) {}); !errors.Is(err, peepool.ErrClosed) {
		t.Fatalf("SetLogger on a closed pool: %v, want ErrClosed", err)
	}
}
