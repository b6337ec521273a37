package jumiotest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// BenchmarkAPIJob runs one API-channel prepared-data job through the
// simulator per iteration, as kycpipe's pipeline does: create the account,
// upload the prepared data, finalize, receive the callback, read the
// details. It measures the simulator's cost per job together with the
// client's (both in this process); profile it to see the simulator's:
//
//	go test -run '^$' -bench BenchmarkAPIJob -cpuprofile /tmp/sim.pprof ./pkg/jumio/jumiotest
func BenchmarkAPIJob(b *testing.B) {
	callbacks := make(chan struct{}, 1024)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		callbacks <- struct{}{}
	}))
	defer recv.Close()
	s := jumiotest.NewServer(jumiotest.Options{Logger: zap.NewNop(), DefaultCallbackURL: recv.URL})
	defer s.Close()
	c, err := jumio.New(s.Credentials(), jumio.WithBaseURL(s.URL), jumio.WithUserAgent("kycpipe-bench/1.0"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	pd := &jumio.PreparedData{FirstName: "Cortez", LastName: "Crook", Email: "cortez.crook@example.com", DateOfBirth: "1990-08-10",
		PhoneNumber: "+18009376310", Address: &jumio.PreparedAddress{Line1: "1302 Fayette Drive", City: "Fort Wayne", PostalCode: "46816", Country: "USA"}}
	for i := 0; b.Loop(); i++ {
		acct, err := c.CreateAccount(ctx, &jumio.AccountRequest{CustomerInternalReference: "bench", UserReference: "crm-1",
			WorkflowDefinition: jumio.WorkflowDefinition{Key: jumio.WorkflowPreparedData}, TokenLifetime: "30m"})
		if err != nil {
			b.Fatal(err)
		}
		cred := acct.WorkflowExecution.Credentials[0]
		if _, err := c.UploadPreparedData(ctx, cred.API.Parts["prepared_data"], cred.API.Token, pd); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Finalize(ctx, cred.API.WorkflowExecution, cred.API.Token); err != nil {
			b.Fatal(err)
		}
		<-callbacks
		if _, err := c.WorkflowDetails(ctx, acct.Account.ID, acct.WorkflowExecution.ID); err != nil {
			b.Fatal(err)
		}
	}
}
