// EventStreams: OneStory's live streams as Server-Sent Events, for browsers (EventSource) and
// bots, on the HTTP gateway's listener:
//
//   GET /onestory.v1.TimelineService/Watch?tenant=acme&customer.customer_id=c1
//   GET /onestory.v1.AlertService/WatchAlerts?tenant=acme
//   Authorization: Bearer <API key or agent token>   or ?access_token=<agent token>
//   Last-Event-ID: <cursor>                          (sent by EventSource when it reconnects)
//   -> 200 Content-Type: text/event-stream
//      retry: 2000
//
//      id: <cursor>                                  one message per event or alert: its
//      data: {"event":{...}}                         cursor and the stream's message in JSON
//
//      : heartbeat                                   every 15 s without a message
//
//      event: error                                  the stream ended: why, and the last id
//      data: {"code":"unavailable","message":"...","lastEventId":"<cursor>"}
//
// The request's fields are query parameters (MessageFromQuery in http_connect.h); Last-Event-ID
// becomes after_cursor, so a reconnect resumes right after the last message received, with no
// gap and no duplicate. The call goes to this process's gRPC server through its in-process
// channel, so authentication, validation, audiences and metrics are the gRPC stream's. A call
// refused before it streams (a bad key, a bad request, an unknown customer) is answered with
// its HTTP status and Connect's error body: EventSource does not retry those. An API key is
// never taken from the URL: `access_token` must be an agent token (a JWT).
//
// A client reading slower than messages come is buffered up to Options::max_buffered messages;
// then the gRPC stream waits, and past the server's lag limit it ends with RESOURCE_EXHAUSTED,
// sent as `event: error`. At most Options::max_streams are open at once; more get 503.
// Thread-safe; each stream runs on its HTTP connection's thread.
#pragma once

#include <grpcpp/generic/generic_stub.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace onestory::service {

class EventStreams {
 public:
  struct Options {
    int max_streams = 1000;                        // open at once; more get 503
    absl::Duration heartbeat = absl::Seconds(15);  // a comment after this long without a message
    size_t max_buffered = 64;  // messages read from the stream but not yet sent to the client
  };
  class Call;

  EventStreams(Options options, std::shared_ptr<grpc::GenericStub> stub);
  // Ends the streams still open (StopAll) and waits for them to close.
  ~EventStreams();

  // Whether <service>/<method> is served as an event stream.
  static bool Serves(absl::string_view service, absl::string_view method);

  // Serves GET /<service>/<method> (Serves() true, CORS already admitted).
  void Serve(const std::string& service, const std::string& method, const httplib::Request& req,
             httplib::Response& res);

  // Ends every open stream with `event: error` (unavailable); new ones get 503 from now on.
  void StopAll();

 private:
  // Admits one more stream (false: over the limit or stopping).
  bool Open(Call* call);
  void Close(Call* call);

  const Options options_;
  std::shared_ptr<grpc::GenericStub> stub_;
  absl::Mutex mu_;
  absl::flat_hash_set<Call*> open_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace onestory::service
