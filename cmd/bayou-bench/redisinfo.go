package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// redisStats is what the scale scenario reads from a Redis server's INFO:
// the calls of every command since the server started, and its memory use.
type redisStats struct {
	calls      map[string]int64 // command name (lower case) -> calls
	usec       map[string]int64 // command name -> microseconds Redis spent running it
	usedMemory int64            // bytes
}

// readRedisStats asks the Redis server at addr (host:port) for INFO
// commandstats and INFO memory.
func readRedisStats(ctx context.Context, addr string) (*redisStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	r := bufio.NewReader(conn)
	st := newRedisStats()
	for _, section := range []string{"commandstats", "memory"} {
		text, err := redisInfo(conn, r, section)
		if err != nil {
			return nil, fmt.Errorf("redis %s: INFO %s: %w", addr, section, err)
		}
		parseRedisInfo(text, st)
	}
	return st, nil
}

func newRedisStats() *redisStats {
	return &redisStats{calls: map[string]int64{}, usec: map[string]int64{}}
}

// redisInfo sends INFO section as an inline command and returns the bulk
// string answered.
func redisInfo(conn net.Conn, r *bufio.Reader, section string) (string, error) {
	if _, err := fmt.Fprintf(conn, "INFO %s\r\n", section); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return "", fmt.Errorf("unexpected answer %.100q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > 1<<20 {
		return "", fmt.Errorf("unexpected bulk length %.100q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// parseRedisInfo adds the "cmdstat_NAME:calls=N,..." and "used_memory:N"
// lines of text to st.
func parseRedisInfo(text string, st *redisStats) {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, fields, ok := strings.Cut(rest, ":")
			if !ok {
				continue
			}
			name = strings.ToLower(name)
			for _, kv := range strings.Split(fields, ",") {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					continue
				}
				switch k {
				case "calls":
					st.calls[name] = n
				case "usec":
					st.usec[name] = n
				}
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				st.usedMemory = n
			}
		}
	}
}

// redisDelta is the commands Redis ran between two readings, and the time
// it spent on them, per operation of the tool (a subscribe, a publish, a
// second).
type redisDelta struct {
	PerOp   float64            `json:"per_op"`
	ByCmd   map[string]float64 `json:"by_command"`
	USPerOp float64            `json:"redis_us_per_op"`
	USByCmd map[string]float64 `json:"redis_us_by_command"`
	Ops     int64              `json:"ops"`
}

// commandsPer returns the commands run between a and b, and the time
// Redis spent on them, divided by ops, leaving out INFO (the tool's own
// readings).
func commandsPer(a, b *redisStats, ops int64) *redisDelta {
	d := &redisDelta{ByCmd: map[string]float64{}, USByCmd: map[string]float64{}, Ops: ops}
	if a == nil || b == nil || ops <= 0 {
		return d
	}
	var total, us int64
	for name, n := range b.calls {
		if name == "info" {
			continue
		}
		if delta := n - a.calls[name]; delta > 0 {
			total += delta
			d.ByCmd[name] = float64(delta) / float64(ops)
		}
		if delta := b.usec[name] - a.usec[name]; delta > 0 {
			us += delta
			d.USByCmd[name] = float64(delta) / float64(ops)
		}
	}
	d.PerOp = float64(total) / float64(ops)
	d.USPerOp = float64(us) / float64(ops)
	return d
}
