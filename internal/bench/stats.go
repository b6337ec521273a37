package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latencies is a set of measured latencies; sort it before asking for
// percentiles.
type Latencies []time.Duration

func (l Latencies) sort() { slices.Sort(l) }

// P returns the q-quantile (0..1) of sorted latencies.
func (l Latencies) P(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(q*float64(len(l))+0.5) - 1
	i = max(0, min(i, len(l)-1))
	return l[i]
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// ProcStat is what /proc says about one process.
type ProcStat struct {
	CPU     time.Duration // user + system time so far
	PeakRSS int64         // VmHWM, bytes
	RSS     int64         // VmRSS, bytes
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// ReadProc reads CPU time and peak resident memory of a process.
func ReadProc(pid int) (ProcStat, error) {
	var st ProcStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name (field 2) may hold spaces; fields after it start at ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, fmt.Errorf("bench: unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("bench: bad /proc/%d/stat", pid)
	}
	st.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		for _, k := range []struct {
			key string
			dst *int64
		}{{"VmHWM:", &st.PeakRSS}, {"VmRSS:", &st.RSS}} {
			if v, ok := strings.CutPrefix(line, k.key); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				*k.dst = kb << 10
			}
		}
	}
	return st, sc.Err()
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
