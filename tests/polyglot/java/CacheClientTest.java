// Java client test for crabcache.v1.Cache (Debian libgrpc-java, libprotobuf-java and
// protobuf-compiler-grpc-java-plugin). run.sh generates the stubs, compiles them with this file
// and runs it against a real crabcached:
//
//   run.sh OUT_DIR HOST:PORT
//
// The regions between the --8<-- markers are docs/grpc.md's Java snippets, word for word
// (tests/docs/check_grpc_snippets.py checks it).

import com.google.protobuf.ByteString;
import io.crabcache.v1.BatchRequest;
import io.crabcache.v1.BatchResponse;
import io.crabcache.v1.CacheGrpc;
import io.crabcache.v1.Code;
import io.crabcache.v1.Command;
import io.crabcache.v1.Delete;
import io.crabcache.v1.DeleteRequest;
import io.crabcache.v1.Get;
import io.crabcache.v1.GetRequest;
import io.crabcache.v1.GetResponse;
import io.crabcache.v1.Ping;
import io.crabcache.v1.Result;
import io.crabcache.v1.Set;
import io.crabcache.v1.SetRequest;
import io.crabcache.v1.Ttl;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

public final class CacheClientTest {
  private interface TestCase {
    void run() throws Exception;
  }

  private final String target;

  private CacheClientTest(String target) {
    this.target = target;
  }

  private static void check(boolean condition, String what) {
    if (!condition) throw new AssertionError(what);
  }

  private static List<Code> codes(BatchResponse response) {
    return response.getResultsList().stream().map(Result::getCode).collect(Collectors.toList());
  }

  private void testUnary() throws Exception {
    // --8<-- [start:java-connect]
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    CacheGrpc.CacheBlockingStub blocking = CacheGrpc.newBlockingStub(channel);
    // --8<-- [end:java-connect]
    try {
      // --8<-- [start:java-unary]
      ByteString key = ByteString.copyFromUtf8("java:unary");
      ByteString value = ByteString.copyFrom(new byte[] {0, -1});
      // A deadline counts from withDeadlineAfter(), so take a fresh stub for each call.
      blocking.withDeadlineAfter(5, TimeUnit.SECONDS)
          .set(SetRequest.newBuilder().setKey(key).setValue(value).build());
      GetResponse got = blocking.withDeadlineAfter(5, TimeUnit.SECONDS)
          .get(GetRequest.newBuilder().setKey(key).build());
      System.out.println(got.getFound() + " " + Arrays.toString(got.getValue().toByteArray()));
      boolean deleted = blocking.withDeadlineAfter(5, TimeUnit.SECONDS)
          .delete(DeleteRequest.newBuilder().setKey(key).build()).getDeleted();
      System.out.println(deleted);  // true
      // --8<-- [end:java-unary]
      check(got.getFound(), "Get of a stored key: not found");
      check(got.getValue().equals(value), "Get value " + got.getValue());
      check(deleted, "Delete of a stored key: deleted=false");
      check(!blocking.withDeadlineAfter(5, TimeUnit.SECONDS)
                .get(GetRequest.newBuilder().setKey(key).build()).getFound(),
          "found after Delete");
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private void testBatchExecute() throws Exception {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    try {
      // --8<-- [start:java-batch]
      CacheGrpc.CacheStub async =
          CacheGrpc.newStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
      List<BatchResponse> responses = new ArrayList<>();
      CompletableFuture<List<BatchResponse>> done = new CompletableFuture<>();
      StreamObserver<BatchRequest> requests =
          async.batchExecute(new StreamObserver<BatchResponse>() {
            @Override public void onNext(BatchResponse response) {
              for (Result r : response.getResultsList()) {
                System.out.println(response.getId() + " " + r.getCode() + " "
                    + r.getValue().toStringUtf8() + " " + r.getTtlMs());
              }
              responses.add(response);
            }
            @Override public void onError(Throwable t) { done.completeExceptionally(t); }
            @Override public void onCompleted() { done.complete(responses); }
          });
      ByteString key = ByteString.copyFromUtf8("java:greeting");
      requests.onNext(BatchRequest.newBuilder().setId(1)
          .addCommands(Command.newBuilder().setSet(Set.newBuilder().setKey(key)
              .setValue(ByteString.copyFromUtf8("hello")).setTtlMs(60000)))
          .addCommands(Command.newBuilder().setGet(Get.newBuilder().setKey(key)))
          .addCommands(Command.newBuilder().setGet(
              Get.newBuilder().setKey(ByteString.copyFromUtf8("java:missing"))))
          .build());
      requests.onNext(BatchRequest.newBuilder().setId(2)
          .addCommands(Command.newBuilder().setTtl(Ttl.newBuilder().setKey(key)))
          .addCommands(Command.newBuilder().setDelete(Delete.newBuilder().setKey(key)))
          .addCommands(Command.newBuilder().setDelete(Delete.newBuilder().setKey(key)))
          .addCommands(Command.newBuilder().setPing(Ping.getDefaultInstance()))
          .build());
      // An empty batch gets an empty response.
      requests.onNext(BatchRequest.newBuilder().setId(3).build());
      requests.onCompleted();
      done.get(10, TimeUnit.SECONDS);  // Throws if the stream failed.
      // --8<-- [end:java-batch]
      check(responses.size() == 3, responses.size() + " responses, want 3");
      for (int i = 0; i < 3; i++) check(responses.get(i).getId() == i + 1, "id of response " + i);
      check(codes(responses.get(0)).equals(List.of(Code.OK, Code.HIT, Code.MISS)),
          "batch 1 codes " + codes(responses.get(0)));
      check(responses.get(0).getResults(1).getValue().toStringUtf8().equals("hello"), "GET value");
      check(codes(responses.get(1)).equals(List.of(Code.OK, Code.OK, Code.NOT_FOUND, Code.PONG)),
          "batch 2 codes " + codes(responses.get(1)));
      long ttl = responses.get(1).getResults(0).getTtlMs();
      check(ttl > 50000 && ttl <= 60000, "TTL " + ttl + " ms");
      check(responses.get(2).getResultsCount() == 0, "empty batch got results");
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private void testOversizedBatch() throws Exception {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(target).usePlaintext().build();
    try {
      CompletableFuture<Void> done = new CompletableFuture<>();
      StreamObserver<BatchRequest> requests =
          CacheGrpc.newStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
              .batchExecute(new StreamObserver<BatchResponse>() {
                @Override public void onNext(BatchResponse response) {}
                @Override public void onError(Throwable t) { done.completeExceptionally(t); }
                @Override public void onCompleted() { done.complete(null); }
              });
      BatchRequest.Builder big = BatchRequest.newBuilder().setId(1);
      for (int i = 0; i < 10001; i++) {
        big.addCommands(Command.newBuilder().setPing(Ping.getDefaultInstance()));
      }
      requests.onNext(big.build());
      requests.onCompleted();
      try {
        done.get(10, TimeUnit.SECONDS);
        throw new AssertionError("oversized batch: stream ended OK");
      } catch (java.util.concurrent.ExecutionException e) {
        check(Status.fromThrowable(e.getCause()).getCode() == Status.Code.INVALID_ARGUMENT,
            "oversized batch: " + e.getCause());
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 1) throw new IllegalArgumentException("usage: CacheClientTest HOST:PORT");
    CacheClientTest t = new CacheClientTest(args[0]);
    Map<String, TestCase> tests = new LinkedHashMap<>();
    tests.put("testUnary", t::testUnary);
    tests.put("testBatchExecute", t::testBatchExecute);
    tests.put("testOversizedBatch", t::testOversizedBatch);
    int failed = 0;
    for (Map.Entry<String, TestCase> test : tests.entrySet()) {
      try {
        test.getValue().run();
        System.out.println("ok   " + test.getKey());
      } catch (Exception | AssertionError e) {
        failed++;
        System.out.println("FAIL " + test.getKey() + ": " + e);
        e.printStackTrace(System.out);
      }
    }
    System.out.println(failed == 0 ? "all java tests passed" : failed + " test(s) failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
