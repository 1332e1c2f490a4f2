// Go client test for crabcache.v1.Cache (Debian golang-google-grpc-dev, protoc-gen-go and
// protoc-gen-go-grpc). run.sh generates the stubs into a GOPATH in the build folder and runs
// `go test` there against a real crabcached:
//
//	run.sh OUT_DIR HOST:PORT
//
// The regions between the --8<-- markers are docs/grpc.md's Go snippets, word for word
// (tests/docs/check_grpc_snippets.py checks it).
package polyglot

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	crabcachev1 "github.com/crabcache/crabcache/gen/go/crabcache/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var target = flag.String("target", "", "crabcached's gRPC address, HOST:PORT")

// connect returns a client of the server under test; its connection closes with the test.
func connect(t *testing.T) crabcachev1.CacheClient {
	if *target == "" {
		t.Fatal("usage: go test -args -target=HOST:PORT")
	}
	// --8<-- [start:go-connect]
	conn, err := grpc.Dial(*target, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	client := crabcachev1.NewCacheClient(conn)
	// --8<-- [end:go-connect]
	t.Cleanup(func() { conn.Close() })
	return client
}

func codesOf(r *crabcachev1.BatchResponse) []crabcachev1.Code {
	var out []crabcachev1.Code
	for _, result := range r.Results {
		out = append(out, result.Code)
	}
	return out
}

func sameCodes(got []crabcachev1.Code, want ...crabcachev1.Code) bool {
	return fmt.Sprint(got) == fmt.Sprint(want)
}

func TestBatchExecute(t *testing.T) {
	client := connect(t)
	// --8<-- [start:go-batch]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := client.BatchExecute(ctx)
	if err != nil {
		log.Fatal(err)
	}
	key := []byte("go:greeting")
	batches := []*crabcachev1.BatchRequest{
		{Id: 1, Commands: []*crabcachev1.Command{
			{Op: &crabcachev1.Command_Set{Set: &crabcachev1.Set{Key: key, Value: []byte("hello"), TtlMs: 60000}}},
			{Op: &crabcachev1.Command_Get{Get: &crabcachev1.Get{Key: key}}},
			{Op: &crabcachev1.Command_Get{Get: &crabcachev1.Get{Key: []byte("go:missing")}}},
		}},
		{Id: 2, Commands: []*crabcachev1.Command{
			{Op: &crabcachev1.Command_Ttl{Ttl: &crabcachev1.Ttl{Key: key}}},
			{Op: &crabcachev1.Command_Delete{Delete: &crabcachev1.Delete{Key: key}}},
			{Op: &crabcachev1.Command_Delete{Delete: &crabcachev1.Delete{Key: key}}},
			{Op: &crabcachev1.Command_Ping{Ping: &crabcachev1.Ping{}}},
		}},
		{Id: 3}, // An empty batch gets an empty response.
	}
	// Send from one goroutine and receive in this one, so many batches stay in flight.
	go func() {
		for _, batch := range batches {
			if stream.Send(batch) != nil {
				return // Recv below reports the stream's error.
			}
		}
		stream.CloseSend()
	}()
	var responses []*crabcachev1.BatchResponse
	for {
		response, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range response.Results {
			fmt.Println(response.Id, r.Code, string(r.Value), r.TtlMs)
		}
		responses = append(responses, response)
	}
	// --8<-- [end:go-batch]
	if len(responses) != 3 {
		t.Fatalf("%d responses, want 3", len(responses))
	}
	for i, r := range responses {
		if r.Id != uint64(i+1) {
			t.Errorf("response %d has id %d", i, r.Id)
		}
	}
	first, second := responses[0], responses[1]
	if got := codesOf(first); !sameCodes(got, crabcachev1.Code_OK, crabcachev1.Code_HIT, crabcachev1.Code_MISS) {
		t.Errorf("batch 1 codes %v", got)
	}
	if string(first.Results[1].Value) != "hello" {
		t.Errorf("GET value %q, want hello", first.Results[1].Value)
	}
	if got := codesOf(second); !sameCodes(got, crabcachev1.Code_OK, crabcachev1.Code_OK, crabcachev1.Code_NOT_FOUND, crabcachev1.Code_PONG) {
		t.Errorf("batch 2 codes %v", got)
	}
	if ttl := second.Results[0].TtlMs; ttl <= 50000 || ttl > 60000 {
		t.Errorf("TTL %d ms, want (50000, 60000]", ttl)
	}
	if n := len(responses[2].Results); n != 0 {
		t.Errorf("empty batch got %d results", n)
	}
}

func TestUnary(t *testing.T) {
	client := connect(t)
	// --8<-- [start:go-unary]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unaryKey := []byte("go:unary")
	if _, err := client.Set(ctx, &crabcachev1.SetRequest{Key: unaryKey, Value: []byte{0, 255}}); err != nil {
		log.Fatal(err)
	}
	got, err := client.Get(ctx, &crabcachev1.GetRequest{Key: unaryKey})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Found, got.Value) // true [0 255]
	deleted, err := client.Delete(ctx, &crabcachev1.DeleteRequest{Key: unaryKey})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(deleted.Deleted) // true
	// --8<-- [end:go-unary]
	if !got.Found || !bytes.Equal(got.Value, []byte{0, 255}) {
		t.Errorf("Get = %v %v, want true [0 255]", got.Found, got.Value)
	}
	if !deleted.Deleted {
		t.Error("Delete of a stored key reported deleted=false")
	}
	again, err := client.Get(ctx, &crabcachev1.GetRequest{Key: unaryKey})
	if err != nil || again.Found {
		t.Errorf("Get after Delete = %v, %v; want not found", again, err)
	}
}

func TestBadCommandAndOversizedBatch(t *testing.T) {
	client := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	stream, err := client.BatchExecute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ping := &crabcachev1.Command{Op: &crabcachev1.Command_Ping{Ping: &crabcachev1.Ping{}}}
	if err := stream.Send(&crabcachev1.BatchRequest{Id: 9, Commands: []*crabcachev1.Command{{}, ping}}); err != nil {
		t.Fatal(err)
	}
	response, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := codesOf(response); !sameCodes(got, crabcachev1.Code_ERROR, crabcachev1.Code_PONG) {
		t.Errorf("codes %v, want [ERROR PONG]", got)
	}
	stream.CloseSend()

	big, err := client.BatchExecute(ctx)
	if err != nil {
		t.Fatal(err)
	}
	commands := make([]*crabcachev1.Command, 10001)
	for i := range commands {
		commands[i] = ping
	}
	big.Send(&crabcachev1.BatchRequest{Id: 1, Commands: commands})
	big.CloseSend()
	if _, err := big.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("oversized batch: %v, want InvalidArgument", err)
	}
}
