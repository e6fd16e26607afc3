#include "producers/publish_job.hpp"

#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>

#include <fmt/format.h>

#include "clients/uv_helpers.hpp"
#include "core/envelope.hpp"
#include "producers/order_generator.hpp"
#include "topology/names.hpp"

namespace sagaflow {
namespace {

constexpr int kMaxPublishAttempts = 20;      // per message, across reconnects
constexpr std::int64_t kRetryDelayMs = 500;  // after an unconfirmed publish

// Where the messages come from: lines of a file, or the generator.
class Input {
 public:
  virtual ~Input() = default;
  // The next message to send; nullopt at the end. A bad line is reported and skipped.
  virtual std::optional<Message> next() = 0;
  virtual std::optional<std::int64_t> total() const = 0;
  virtual std::int64_t bad() const = 0;
};

class FileInput final : public Input {
 public:
  FileInput(std::FILE* f, bool owned, std::size_t max_bytes, const std::string* raw_route)
      : f_(f), owned_(owned), raw_route_(raw_route), parser_(max_bytes) {}
  ~FileInput() override {
    std::free(line_);
    if (owned_) std::fclose(f_);
  }
  FileInput(const FileInput&) = delete;
  FileInput& operator=(const FileInput&) = delete;

  std::optional<Message> next() override {
    for (;;) {
      const ssize_t n = ::getline(&line_, &cap_, f_);
      if (n < 0) return std::nullopt;
      line_no_++;
      std::string_view body(line_, static_cast<std::size_t>(n));
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
      if (body.find_first_not_of(" \t") == std::string_view::npos) continue;
      if (raw_route_ != nullptr) {
        Message m;
        m.exchange = std::string(topology::kEventsExchange);
        m.routing_key = *raw_route_;
        m.body = std::string(body);
        return m;
      }
      if (Status s = parser_.parse(body, event_); !s) {
        bad_++;
        std::fprintf(stderr, "\r\033[Kline %lld: %s: %s\n", static_cast<long long>(line_no_),
                     std::string(reason_code(s.error().code)).c_str(), s.error().detail.c_str());
        continue;
      }
      Message m;
      const std::string_view type = to_string(event_.type);
      m.exchange = std::string(is_command(event_.type) ? topology::kCommandsExchange
                                                       : topology::kEventsExchange);
      m.routing_key = std::string(type);
      m.key = std::string(event_.order_id.view());
      m.message_id = event_.id.str();
      m.body = std::string(body);
      return m;
    }
  }
  std::optional<std::int64_t> total() const override { return std::nullopt; }
  std::int64_t bad() const override { return bad_; }

 private:
  std::FILE* f_;
  bool owned_;
  const std::string* raw_route_;  // not null: raw mode
  char* line_ = nullptr;
  std::size_t cap_ = 0;
  std::int64_t line_no_ = 0;
  std::int64_t bad_ = 0;
  EnvelopeParser parser_;
  Event event_;
};

class GeneratedInput final : public Input {
 public:
  GeneratedInput(std::int64_t n, std::uint64_t seed, int stores) : n_(n), gen_(seed, stores) {}
  std::optional<Message> next() override {
    if (done_ >= n_) return std::nullopt;
    done_++;
    GeneratedEvent e = gen_.next();
    Message m;
    m.exchange = std::string(topology::kEventsExchange);
    m.routing_key = "order.created";
    m.key = e.order_id;
    m.message_id = std::move(e.id);
    m.body = std::move(e.body);
    return m;
  }
  std::optional<std::int64_t> total() const override { return n_; }
  std::int64_t bad() const override { return 0; }

 private:
  std::int64_t n_;
  std::int64_t done_ = 0;
  OrderGenerator gen_;
};

class Job {
 public:
  Job(uv_loop_t* loop, const PublishTarget& target, const PublishOptions& o, Input& input)
      : loop_(loop), options_(o), input_(input), tick_(loop), progress_timer_(loop) {
    sink_ = target.make_sink(loop, o.window == 0 ? 1 : o.window);
    sink_->on_writable([this] { fill(); });
    sink_->on_state_change([this](bool up) {
      if (up) fill();
    });
    show_progress_ = o.progress == 1 || (o.progress == -1 && ::isatty(STDERR_FILENO) == 1);
  }

  void run() {
    start_ms_ = clients::now_ms(loop_);
    sink_->start();
    tick_.start(
        20, [this] { fill(); }, 20);
    if (show_progress_)
      progress_timer_.start(
          200, [this] { draw_progress(); }, 200);
    uv_run(loop_, UV_RUN_DEFAULT);
  }

  std::int64_t confirmed() const { return confirmed_; }
  std::int64_t failed() const { return failed_; }
  double seconds() const { return static_cast<double>(end_ms_ - start_ms_) / 1000.0; }
  const std::string& first_error() const { return first_error_; }

 private:
  struct Retry {
    Message message;
    int attempts;
    std::int64_t not_before_ms;
  };

  bool rate_allows() const {
    if (options_.rate <= 0) return true;
    const double elapsed = static_cast<double>(clients::now_ms(loop_) - start_ms_) / 1000.0;
    return static_cast<double>(sent_) < elapsed * options_.rate + 1.0;
  }

  void fill() {
    if (finished_) return;
    uv_update_time(loop_);
    const std::int64_t now = clients::now_ms(loop_);
    while (sink_->can_publish() && rate_allows()) {
      if (!retries_.empty() && retries_.front().not_before_ms <= now) {
        Retry r = std::move(retries_.front());
        retries_.pop_front();
        send(std::move(r.message), r.attempts);
        continue;
      }
      if (input_done_) break;
      std::optional<Message> m = input_.next();
      if (!m) {
        input_done_ = true;
        break;
      }
      sent_++;
      send(std::move(*m), 0);
    }
    maybe_finish();
  }

  void send(Message m, int attempts) {
    in_flight_++;
    // The callback keeps a copy only if a retry may need it.
    auto copy = std::make_shared<Message>(m);
    sink_->publish(std::move(m), [this, copy, attempts](Status s) {
      in_flight_--;
      if (s) {
        confirmed_++;
      } else if (attempts + 1 < kMaxPublishAttempts) {
        retries_.push_back(
            Retry{std::move(*copy), attempts + 1, clients::now_ms(loop_) + kRetryDelayMs});
      } else {
        failed_++;
        if (first_error_.empty()) first_error_ = s.error().detail;
      }
      maybe_finish();
    });
  }

  void maybe_finish() {
    if (finished_ || !input_done_ || in_flight_ > 0 || !retries_.empty()) return;
    finished_ = true;
    end_ms_ = clients::now_ms(loop_);
    tick_.stop();
    progress_timer_.stop();
    if (show_progress_) std::fputs("\r\033[K", stderr);
    sink_->stop([] {});
  }

  void draw_progress() {
    const double secs = static_cast<double>(clients::now_ms(loop_) - start_ms_) / 1000.0;
    const double rate = secs > 0 ? static_cast<double>(confirmed_) / secs : 0;
    if (auto total = input_.total(); total && *total > 0) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * confirmed_ / *total);
      std::fprintf(stderr, "\r\033[K[%s%s] %lld/%lld (%.0f/s)",
                   std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(),
                   static_cast<long long>(confirmed_), static_cast<long long>(*total), rate);
    } else {
      std::fprintf(stderr, "\r\033[Kpublished %lld (%.0f/s)", static_cast<long long>(confirmed_),
                   rate);
    }
    std::fflush(stderr);
  }

  uv_loop_t* loop_;
  PublishOptions options_;
  Input& input_;
  std::unique_ptr<Sink> sink_;
  clients::Timer tick_;
  clients::Timer progress_timer_;
  std::deque<Retry> retries_;
  std::int64_t start_ms_ = 0;
  std::int64_t end_ms_ = 0;
  std::int64_t sent_ = 0;
  std::int64_t in_flight_ = 0;
  std::int64_t confirmed_ = 0;
  std::int64_t failed_ = 0;
  std::string first_error_;
  bool input_done_ = false;
  bool finished_ = false;
  bool show_progress_ = false;
};

}  // namespace

int run_publish_job(const Config& config, const PublishOptions& o, const PublishTarget& target) {
  if (o.file.empty() == !o.generate.has_value()) {
    std::fputs("sagaflow publish: give exactly one of --file F or --generate N\n", stderr);
    return 2;
  }
  if (o.generate && *o.generate < 0) {
    std::fputs("sagaflow publish: --generate must be >= 0\n", stderr);
    return 2;
  }
  if (o.rate < 0) {
    std::fputs("sagaflow publish: --rate must be >= 0\n", stderr);
    return 2;
  }
  if (o.raw && o.generate) {
    std::fputs("sagaflow publish: --raw goes with --file, not --generate\n", stderr);
    return 2;
  }
  const std::string* raw_route = o.raw ? &o.route : nullptr;
  std::unique_ptr<Input> input;
  if (o.generate) {
    input = std::make_unique<GeneratedInput>(*o.generate, o.seed, o.stores);
  } else if (o.file == "-") {
    input = std::make_unique<FileInput>(stdin, false, config.max_message_bytes, raw_route);
  } else {
    std::FILE* f = std::fopen(o.file.c_str(), "rb");
    if (f == nullptr) {
      std::fprintf(stderr, "sagaflow publish: cannot open '%s': %s\n", o.file.c_str(),
                   std::strerror(errno));
      return 1;
    }
    input = std::make_unique<FileInput>(f, true, config.max_message_bytes, raw_route);
  }

  // Fail fast, with the reason, when the broker cannot be reached at all.
  if (Status st = target.probe(); !st) {
    std::fprintf(stderr, "sagaflow publish: %s\n", st.error().detail.c_str());
    return 1;
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  std::int64_t confirmed = 0;
  std::int64_t failed = 0;
  double secs = 0;
  std::string first_error;
  {
    Job job(&loop, target, o, *input);
    job.run();
    confirmed = job.confirmed();
    failed = job.failed();
    secs = job.seconds();
    first_error = job.first_error();
  }
  uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks of the job's handles
  uv_loop_close(&loop);

  const double rate =
      secs > 0 ? static_cast<double>(confirmed) / secs : static_cast<double>(confirmed);
  std::string summary = fmt::format("published {} events in {:.1f} s ({:.0f}/s), {} failed",
                                    confirmed, secs, rate, failed);
  if (input->bad() > 0) summary += fmt::format(", {} bad lines not sent", input->bad());
  std::fprintf(stderr, "%s\n", summary.c_str());
  if (failed > 0) std::fprintf(stderr, "sagaflow publish: %s\n", first_error.c_str());
  return (failed > 0 || input->bad() > 0) ? 1 : 0;
}

}  // namespace sagaflow
