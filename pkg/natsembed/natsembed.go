// Package natsembed runs a NATS server with JetStream inside the process:
// for `make run`, local demos and tests. Production runs kycpipe against an
// external NATS cluster; only programs that embed a server import this
// package (and with it the whole nats-server).
package natsembed

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// Options configures an in-process NATS server with JetStream.
type Options struct {
	// StoreDir is JetStream's file store directory (required): restarting a
	// server on the same directory keeps every stream and bucket.
	StoreDir string
	// Host and Port to listen on. Port 0 picks a free port; Port -1 does not
	// listen at all (in-process connections only, the fastest for tests).
	Host string
	Port int
	// ServerName defaults to "kycpipe-embedded".
	ServerName string
	// ConfigFile, when set, loads a nats-server configuration file first;
	// the fields above then override it where set.
	ConfigFile string
	// MaxMemory and MaxStore bound JetStream (defaults: server's own).
	MaxMemory, MaxStore int64
	// ClusterName, ClusterPort and Routes make the server a node of a
	// JetStream cluster (routes to the other nodes, e.g.
	// nats://127.0.0.1:6222). A clustered server must listen (Port ≥ 0).
	ClusterName string
	ClusterPort int
	Routes      []string
	// Logger receives the server's notices and errors (default: none).
	Logger *zap.Logger
}

// Run starts a NATS server with JetStream in this process and waits
// until it accepts connections. Shut it down with Shutdown and
// WaitForShutdown.
func Run(o Options) (*server.Server, error) {
	var opts *server.Options
	if o.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("natsembed: nats config %s: %w", o.ConfigFile, err)
		}
	} else {
		opts = &server.Options{}
	}
	if o.StoreDir == "" && opts.StoreDir == "" {
		return nil, errors.New("natsembed: embedded NATS needs a store directory")
	}
	opts.JetStream = true
	if o.StoreDir != "" {
		opts.StoreDir = o.StoreDir
	}
	if o.ServerName != "" || opts.ServerName == "" {
		opts.ServerName = cmp.Or(o.ServerName, "kycpipe-embedded")
	}
	if o.Host != "" || opts.Host == "" {
		opts.Host = cmp.Or(o.Host, "127.0.0.1")
	}
	switch {
	case o.Port < 0:
		opts.DontListen = true
	case o.Port > 0:
		opts.Port = o.Port
	case o.ConfigFile == "" || opts.Port == 0:
		opts.Port = server.RANDOM_PORT
	}
	if o.MaxMemory > 0 {
		opts.JetStreamMaxMemory = o.MaxMemory
	}
	if o.MaxStore > 0 {
		opts.JetStreamMaxStore = o.MaxStore
	}
	if o.ClusterName != "" {
		if opts.DontListen {
			return nil, errors.New("natsembed: a clustered NATS server must listen on a port")
		}
		opts.Cluster.Name = o.ClusterName
		opts.Cluster.Host = opts.Host
		opts.Cluster.Port = o.ClusterPort
		opts.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	}
	opts.NoSigs = true
	opts.NoLog = o.Logger == nil
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: embedded NATS: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(natsLogger{o.Logger.Named("nats")}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("natsembed: embedded NATS did not become ready within 30s")
	}
	return ns, nil
}

// natsLogger adapts zap to the server's logger interface.
type natsLogger struct{ l *zap.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.l.Info(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  {}
