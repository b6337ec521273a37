package pipeline

import (
	"context"
	"encoding/json"
	"errors"
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
	return &leaderReader{nc: js.Conn(), apiSubj: msgGetSubject(js, "KV_"+bucket), keyPrefix: "$KV." + bucket + "."}
}

// msgGetSubject is the STREAM.MSG.GET request subject of stream, under js's
// API prefix (or domain).
func msgGetSubject(js jetstream.JetStream, stream string) string {
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
	return prefix + "STREAM.MSG.GET." + stream
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
	m, err := lastMsgFromLeader(ctx, l.nc, l.apiSubj, l.keyPrefix+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from the stream leader: %w", key, err)
	}
	if m.header.Get("KV-Operation") != "" || m.header.Get(jetstream.MarkerReasonHeader) != "" {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return m.data, m.seq, nil
}

// leaderMsg is a message read from a stream's leader.
type leaderMsg struct {
	subject string
	seq     uint64
	header  nats.Header
	data    []byte
}

// lastMsgFromLeader returns the last message on subject of the stream whose
// STREAM.MSG.GET subject is apiSubj (see msgGetSubject): one request, which
// only the stream's leader answers. It returns jetstream.ErrMsgNotFound when
// the subject holds no message.
func lastMsgFromLeader(ctx context.Context, nc *nats.Conn, apiSubj, subject string) (*leaderMsg, error) {
	return msgFromLeader(ctx, nc, apiSubj, msgGetRequest{LastBySubject: subject})
}

// msgGetRequest is a STREAM.MSG.GET request: the last message on a subject,
// or the first at or after a sequence on subjects matching a filter.
type msgGetRequest struct {
	Seq           uint64 `json:"seq,omitempty"`
	LastBySubject string `json:"last_by_subj,omitempty"`
	NextBySubject string `json:"next_by_subj,omitempty"`
}

// msgFromLeader sends one STREAM.MSG.GET request to the stream's leader; a
// missing message is jetstream.ErrMsgNotFound.
func msgFromLeader(ctx context.Context, nc *nats.Conn, apiSubj string, get msgGetRequest) (*leaderMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultLeaderReadTimeout)
		defer cancel()
	}
	req, err := json.Marshal(get)
	if err != nil {
		return nil, err
	}
	msg, err := nc.RequestWithContext(ctx, apiSubj, req)
	if err != nil {
		return nil, err
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == errCodeNoMessage:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, &leaderReadError{code: resp.Error.Code, errCode: resp.Error.ErrCode, desc: resp.Error.Description}
	case resp.Message == nil:
		return nil, jetstream.ErrInvalidJetStreamResponse
	}
	m := &leaderMsg{subject: resp.Message.Subject, seq: resp.Message.Sequence, data: resp.Message.Data}
	if len(resp.Message.Header) > 0 {
		if m.header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, err
		}
	}
	return m, nil
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

// objectStoredAtLeader reports whether the stream leader of the object
// store bucket holds name's object (a live meta entry). The object store
// reads an object's meta entry with a direct get (nats.go creates object
// stores with AllowDirect), which any replica answers: on an R3 store a
// follower that has not yet applied an image stored a few milliseconds
// earlier, or was cut off from its peers, answers "not found" (as for the
// job-state bucket above). A worker asks the leader before it treats an
// image as gone, and so fails a job for a missing image only when the
// cluster has no such image.
func objectStoredAtLeader(ctx context.Context, js jetstream.JetStream, bucket, name string) (bool, error) {
	m, err := lastMsgFromLeader(ctx, js.Conn(), msgGetSubject(js, "OBJ_"+bucket), objectMetaSubject(bucket, name))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read image %s's entry from the stream leader: %w", name, err)
	}
	var info struct {
		Deleted bool `json:"deleted"`
	}
	if err := json.Unmarshal(m.data, &info); err != nil {
		return false, fmt.Errorf("image %s's entry: %w", name, err)
	}
	return !info.Deleted, nil
}
