package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// This file reads key-value entries from the bucket stream's leader.
//
// nats.go answers KeyValue.Get with a direct get when the bucket allows it
// (it creates buckets with AllowDirect), and every replica of an R3 bucket
// answers direct gets, the replica on the client's own server first. A
// replica that was cut off from its peers, or is catching up after a
// partition, keeps answering with what it has: an old revision, or nothing
// (nats-io/nats-server#4710; nats-server 2.15 enables a follower's direct
// gets once it is current and never disables them when it falls behind
// again). The job-state reads that decide something (resume a saga, retrieve
// an execution, accept a callback, fail a job) go to the stream leader
// instead, with the $JS.API.STREAM.MSG.GET request, which only the leader
// answers: it sees every write the cluster committed.

// defaultLeaderReadTimeout bounds a leader read whose context has no
// deadline (nats.go's default API timeout).
const defaultLeaderReadTimeout = 5 * time.Second

// leaderReader reads the latest entry of a key from the stream leader of a
// key-value bucket.
type leaderReader struct {
	nc        *nats.Conn
	apiSubj   string // <API prefix>STREAM.MSG.GET.KV_<bucket>
	keyPrefix string // $KV.<bucket>.
}

// newLeaderReader returns the leader reader of bucket, using js's connection
// and API prefix (or domain).
func newLeaderReader(js jetstream.JetStream, bucket string) *leaderReader {
	o := js.Options()
	prefix := jetstream.DefaultAPIPrefix
	switch {
	case o.APIPrefix != "":
		prefix = o.APIPrefix
		if !strings.HasSuffix(prefix, ".") {
			prefix += "."
		}
	case o.Domain != "":
		prefix = "$JS." + o.Domain + ".API."
	}
	return &leaderReader{nc: js.Conn(), apiSubj: prefix + "STREAM.MSG.GET.KV_" + bucket, keyPrefix: "$KV." + bucket + "."}
}

// errCodeNoMessage is JetStream's "no message found" (10037).
const errCodeNoMessage = 10037

// msgGetResponse is JetStream's answer to a STREAM.MSG.GET request.
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error,omitempty"`
	Message *struct {
		Subject  string `json:"subject"`
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs,omitempty"`
		Data     []byte `json:"data,omitempty"`
	} `json:"message,omitempty"`
}

// get returns the value and revision of key's latest entry, or
// jetstream.ErrKeyNotFound when the key has none or its latest entry is a
// delete or purge marker.
func (l *leaderReader) get(ctx context.Context, key string) ([]byte, uint64, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultLeaderReadTimeout)
		defer cancel()
	}
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{l.keyPrefix + key})
	if err != nil {
		return nil, 0, err
	}
	msg, err := l.nc.RequestWithContext(ctx, l.apiSubj, req)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from the stream leader: %w", key, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("read %s from the stream leader: %w", key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoMessage:
		return nil, 0, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("read %s from the stream leader: %w", key, &leaderReadError{code: resp.Error.Code, errCode: resp.Error.ErrCode, desc: resp.Error.Description})
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("read %s from the stream leader: %w", key, jetstream.ErrInvalidJetStreamResponse)
	}
	if len(resp.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return nil, 0, fmt.Errorf("read %s from the stream leader: %w", key, err)
		}
		if h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return nil, 0, jetstream.ErrKeyNotFound
		}
	}
	return resp.Message.Data, resp.Message.Sequence, nil
}

// leaderReadError is an error JetStream answered a leader read with (a
// cluster without a leader: 503, 10008).
type leaderReadError struct {
	code, errCode int
	desc          string
}

func (e *leaderReadError) Error() string {
	return fmt.Sprintf("jetstream: %s (status %d, code %d)", e.desc, e.code, e.errCode)
}
