#include "sentinel.hpp"

#include <spdlog/spdlog.h>

#include <charconv>

#include "rules.hpp"
#include "text.hpp"

namespace redlock::detail {
namespace {

Connection::Settings sentinel_settings(const NodeContext& ctx) {
  const ClientOptions& o = ctx.options;
  return {o.connect_timeout, o.reconnect_min, o.reconnect_max, 4 * 1024, ctx.tls};
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(port);
}

bool usable_ip(const std::string& ip) {
  sockaddr_storage addr{};
  return uv_ip4_addr(ip.c_str(), 1, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
         uv_ip6_addr(ip.c_str(), 1, reinterpret_cast<sockaddr_in6*>(&addr)) == 0;
}

}  // namespace

std::optional<HostPort> parse_switch_master(std::string_view text, std::string_view master) {
  std::vector<std::string_view> words;
  std::size_t pos = 0;
  while (pos < text.size() && words.size() <= 5) {
    const auto space = text.find(' ', pos);
    const auto end = space == std::string_view::npos ? text.size() : space;
    if (end > pos) words.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  if (words.size() != 5 || words[0] != master) return std::nullopt;
  const auto port = parse_port(words[4]);
  if (!port || !usable_ip(std::string(words[3]))) return std::nullopt;
  return HostPort{std::string(words[3]), *port};
}

SentinelFollower::SentinelFollower(const NodeContext& ctx, const NodeAddress& address,
                                   const std::string& name, Listener& listener)
    : ctx_(ctx),
      address_(address),
      name_(name),
      listener_(listener),
      query_(*this, sentinel_settings(ctx)),
      watch_(*this, sentinel_settings(ctx)) {}

void SentinelFollower::start() { watch_.conn.start(); }

void SentinelFollower::close() {
  closed_ = true;
  query_.conn.close();
  watch_.conn.close();
}

void SentinelFollower::resolve() {
  if (closed_) return;
  query_.conn.start();
}

Endpoint SentinelFollower::sentinel(std::size_t i) const {
  const auto& s = address_.sentinels[i % address_.sentinels.size()];
  Endpoint e;
  e.host = s.host;
  e.port = s.port;
  e.tls = address_.tls;  // sentinels:// speaks TLS to the sentinels too
  return e;
}

std::string SentinelFollower::label(std::size_t i) const {
  return "sentinel " + std::to_string(i % address_.sentinels.size() + 1);
}

SentinelFollower::Query::Query(SentinelFollower& f, const Connection::Settings& s)
    : follower(f), conn(f.ctx_.loop, *this, s) {}

std::optional<Endpoint> SentinelFollower::Query::endpoint() {
  answer.reset();
  return follower.sentinel(next);
}

void SentinelFollower::Query::handshake(std::vector<std::string>& commands) {
  commands.push_back(
      format_command({"SENTINEL", "get-master-addr-by-name", follower.address_.master}));
}

std::optional<Connection::Refusal> SentinelFollower::Query::on_handshake_reply(std::size_t,
                                                                               const Reply& reply) {
  const auto who = follower.label(next);
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2) {
    return Connection::Refusal{who + " does not know master \"" + follower.address_.master + "\"" +
                                   (reply.is_error() ? ": " + reply.str : std::string()),
                               false};
  }
  const std::string& ip = reply.elements[0].str;
  const auto port = parse_port(reply.elements[1].str);
  if (!port || !usable_ip(ip)) {
    return Connection::Refusal{
        who + " gave an unusable address " + ip + ":" + reply.elements[1].str, false};
  }
  answer = HostPort{ip, *port};
  return std::nullopt;
}

void SentinelFollower::Query::on_ready() {
  // Done with this sentinel until the master has to be asked for again.
  auto master = std::move(answer);
  conn.reset();
  if (!master) return;
  follower.ctx_.log.info("node {}: the sentinels name {}:{} as master {}", follower.name_,
                         master->host, master->port, quote_bytes(follower.address_.master));
  follower.master_ = std::move(master);
  follower.listener_.on_master_changed("the sentinels named the master");
}

void SentinelFollower::Query::on_down(const std::string& why, bool) {
  const auto who = follower.label(next);
  ++next;
  follower.listener_.on_sentinel_failed(why.starts_with("sentinel ") ? why : who + ": " + why);
}

SentinelFollower::Watch::Watch(SentinelFollower& f, const Connection::Settings& s)
    : follower(f), conn(f.ctx_.loop, *this, s) {}

std::optional<Endpoint> SentinelFollower::Watch::endpoint() { return follower.sentinel(next); }

void SentinelFollower::Watch::on_ready() {
  static const std::string subscribe = format_command({"SUBSCRIBE", "+switch-master"});
  conn.write(subscribe);
}

void SentinelFollower::Watch::on_reply(Reply& r) {
  // ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]
  if (r.type != Reply::Type::kArray || r.elements.size() != 3 || r.elements[0].str != "message") {
    return;
  }
  auto moved = parse_switch_master(r.elements[2].str, follower.address_.master);
  if (!moved) return;
  follower.ctx_.log.info("node {}: +switch-master: master {} moved to {}:{}", follower.name_,
                         quote_bytes(follower.address_.master), moved->host, moved->port);
  const std::string why = "failover: the sentinels switched the master to " + moved->host + ":" +
                          std::to_string(moved->port);
  follower.master_ = std::move(moved);
  follower.query_.conn.reset();  // no need to ask any more
  follower.listener_.on_master_changed(why);
}

void SentinelFollower::Watch::on_down(const std::string& why, bool) {
  follower.ctx_.log.debug("node {}: sentinel subscription: {}", follower.name_, why);
  ++next;
}

}  // namespace redlock::detail
