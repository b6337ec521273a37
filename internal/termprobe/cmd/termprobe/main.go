// Command termprobe runs the termprobe experiment (package
// internal/termprobe) on an embedded JetStream cluster: messages pending in
// a consumer are deleted, and every MSG_TERMINATED advisory the server
// publishes for them is checked against the stream at once.
//
//	go run ./internal/termprobe/cmd/termprobe --nodes 3 --messages 3000 --concurrency 8
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/internal/termprobe"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "termprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	nodes := flag.Int("nodes", 3, "cluster size (1: a single server); streams are replicated on every node up to 3")
	msgs := flag.Int("messages", 3000, "messages published, delivered once and deleted")
	conc := flag.Int("concurrency", 8, "deletes in flight at once")
	restartEvery := flag.Duration("restart-every", 0, "stop one node (in turn) this often, for 5 s (0: never)")
	after := flag.Duration("delete-after", 50*time.Millisecond, "time between a message's NakWithDelay and its delete")
	leaders := flag.String("leaders", "split,same", "consumer leader placements to run, in order: split (another server than the stream leader), same, elected")
	noHead := flag.Bool("no-head", false, "leave the stream without an unconsumed message at its head")
	dir := flag.String("dir", "", "store directory (default: a temporary directory, removed at the end)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	storeDir := *dir
	if storeDir == "" {
		d, err := os.MkdirTemp("", "termprobe-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		storeDir = d
	}
	c, err := termprobe.StartCluster(storeDir, *nodes)
	if err != nil {
		return err
	}
	defer c.Shutdown()
	nc, js, err := c.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = termprobe.WaitJetStream(wctx, js)
	cancel()
	if err != nil {
		return err
	}
	churn, stopChurn := context.WithCancel(ctx)
	churned := make(chan int)
	go func() {
		n := 0
		defer func() { churned <- n }()
		if *restartEvery <= 0 || c.Size() < 3 {
			return
		}
		for i := 0; ctxutil.Sleep(churn, *restartEvery); i = (i + 1) % c.Size() {
			c.Stop(i)
			n++
			ctxutil.Sleep(context.WithoutCancel(churn), 5*time.Second)
			if err := c.Start(i); err != nil {
				fmt.Fprintln(os.Stderr, "termprobe: restart:", err)
			}
		}
	}()
	var runs []termprobe.Leaders
	for l := range strings.SplitSeq(*leaders, ",") {
		switch l = strings.TrimSpace(l); l {
		case "elected":
			runs = append(runs, termprobe.LeadersAsElected)
		case string(termprobe.LeadersSame), string(termprobe.LeadersSplit):
			runs = append(runs, termprobe.Leaders(l))
		default:
			stopChurn()
			<-churned
			return fmt.Errorf("--leaders: %q is not split, same or elected", l)
		}
	}
	start := time.Now()
	var results []*termprobe.Result
	for i, l := range runs {
		var res *termprobe.Result
		res, err = termprobe.Run(ctx, nc, js, termprobe.Options{Stream: fmt.Sprintf("PROBE%d", i+1), Replicas: min(3, *nodes),
			Messages: *msgs, Concurrency: *conc, Settle: 10 * time.Second, DeleteAfter: *after, NoHead: *noHead, Leaders: l})
		if err != nil {
			break
		}
		results = append(results, res)
	}
	stopChurn()
	restarts := <-churned
	if err != nil {
		return err
	}
	fmt.Printf("nodes %d (streams and consumers R%d), node restarts %d, %s; %d messages per run, %d deletes in flight, delete %s after the NakWithDelay\n",
		*nodes, min(3, *nodes), restarts, time.Since(start).Round(time.Second), *msgs, *conc, *after)
	for i, res := range results {
		fmt.Printf("\nrun %d: consumer leader %q (stream leader %s, consumer leader %s at the end)\n", i+1, cmp.Or(string(runs[i]), "elected"), res.StreamLeader, res.ConsumerLeader)
		fmt.Printf("  pending messages deleted: %d\n", res.Deleted)
		fmt.Printf("  MSG_TERMINATED advisories: %d (for sequences not deleted: %d)\n", res.Advisories, res.Unmatched)
		reasons := make([]string, 0, len(res.ByReason))
		for r := range res.ByReason {
			reasons = append(reasons, r)
		}
		sort.Strings(reasons)
		for _, r := range reasons {
			fmt.Printf("    reason %q: %d\n", r, res.ByReason[r])
		}
		fmt.Printf("    by delivery count: %v\n", res.ByDeliveries)
		fmt.Printf("  advisories after which GetMsg still returned the message: %d\n", res.Found)
		fmt.Printf("  messages left in the stream at the end: %d\n", res.LeftInStream)
	}
	return nil
}
