// sentinel.hpp: following a Sentinel-managed master (a sentinel:// node).
//
// The follower asks the sentinels, one after the other, for the master's
// address (SENTINEL get-master-addr-by-name), and keeps a subscription to
// +switch-master on one of them, so that a failover is followed at once and
// not only when the old master fails. Its Node connects to whatever master
// the follower names.
//
// Threading: the loop thread. Ownership: the Node owns its follower.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connection.hpp"
#include "node_context.hpp"
#include "validate.hpp"

namespace redlock::detail {

class SentinelFollower {
 public:
  class Listener {
   public:
    // The master's address became known, or moved.
    virtual void on_master_changed(const std::string& why) = 0;
    // Asking the sentinels failed (`why` names the sentinel).
    virtual void on_sentinel_failed(const std::string& why) = 0;

   protected:
    virtual ~Listener() = default;
  };

  SentinelFollower(const NodeContext& ctx, const NodeAddress& address, const std::string& name,
                   Listener& listener);

  // Starts the +switch-master subscription.
  void start();
  void close();
  // The master's address, once a sentinel named it.
  [[nodiscard]] const std::optional<HostPort>& master() const noexcept { return master_; }
  // Asks the sentinels for the master (unless a question is under way).
  void resolve();
  // The master failed or was demoted: the next resolve() asks again.
  void forget() { master_.reset(); }
  // Why the last question failed ("" when none did).
  [[nodiscard]] const std::string& last_error() const noexcept { return query_.conn.last_error(); }

 private:
  // One question to one sentinel at a time, the next sentinel after a failure.
  struct Query final : Connection::Owner {
    Query(SentinelFollower& f, const Connection::Settings& s);
    std::optional<Endpoint> endpoint() override;
    void handshake(std::vector<std::string>& commands) override;
    std::optional<Connection::Refusal> on_handshake_reply(std::size_t index,
                                                          const Reply& reply) override;
    void on_ready() override;
    void on_reply(Reply&) override {}
    void on_down(const std::string& why, bool permanent) override;

    SentinelFollower& follower;
    Connection conn;
    std::size_t next = 0;  // which sentinel to ask
    std::optional<HostPort> answer;
  };
  // The +switch-master subscription on one sentinel.
  struct Watch final : Connection::Owner {
    Watch(SentinelFollower& f, const Connection::Settings& s);
    std::optional<Endpoint> endpoint() override;
    void on_ready() override;
    void on_reply(Reply& reply) override;
    void on_down(const std::string& why, bool permanent) override;

    SentinelFollower& follower;
    Connection conn;
    std::size_t next = 0;
  };

  [[nodiscard]] Endpoint sentinel(std::size_t i) const;
  [[nodiscard]] std::string label(std::size_t i) const;

  const NodeContext& ctx_;
  const NodeAddress& address_;
  const std::string& name_;
  Listener& listener_;
  std::optional<HostPort> master_;
  Query query_;
  Watch watch_;
  bool closed_ = false;
};

// A +switch-master message's text, "<master> <old-ip> <old-port> <new-ip>
// <new-port>": the new address when it is about `master` and well formed.
[[nodiscard]] std::optional<HostPort> parse_switch_master(std::string_view text,
                                                          std::string_view master);

}  // namespace redlock::detail
