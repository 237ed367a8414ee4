#include "wake.hpp"

#include <algorithm>

namespace redlock::detail {

bool ChannelTable::Listeners::insert(ListenerId id) {
  if (id == first_ || (more_ && std::find(more_->begin(), more_->end(), id) != more_->end())) {
    return false;
  }
  if (first_ == 0) {
    first_ = id;
    return true;
  }
  if (!more_) more_ = std::make_unique<std::vector<ListenerId>>();
  more_->push_back(id);
  return true;
}

bool ChannelTable::Listeners::erase(ListenerId id) {
  if (id != 0 && id == first_) {
    first_ = 0;
    if (more_) {
      first_ = more_->back();
      more_->pop_back();
      if (more_->empty()) more_.reset();
    }
    return true;
  }
  if (!more_) return false;
  const auto it = std::find(more_->begin(), more_->end(), id);
  if (it == more_->end()) return false;
  more_->erase(it);
  if (more_->empty()) more_.reset();
  return true;
}

std::vector<ChannelTable::ListenerId> ChannelTable::Listeners::ids() const {
  std::vector<ListenerId> out;
  out.reserve(more_ ? more_->size() + 1 : 1);
  if (first_ != 0) out.push_back(first_);
  if (more_) out.insert(out.end(), more_->begin(), more_->end());
  std::sort(out.begin(), out.end());
  return out;
}

bool ChannelTable::add(const std::string& channel, ListenerId listener) {
  if (listener == 0) return false;
  auto [it, created] = map_.try_emplace(channel);
  if (!created && it->second.listeners.empty()) --idle_;
  it->second.listeners.insert(listener);
  return created;
}

bool ChannelTable::remove(const std::string& channel, ListenerId listener, Clock::time_point now,
                          bool keep) {
  auto it = map_.find(channel);
  if (it == map_.end() || !it->second.listeners.erase(listener)) return false;
  if (!it->second.listeners.empty()) return false;
  if (keep) {
    it->second.idle_since = now;
    ++idle_;
    return false;
  }
  map_.erase(it);
  return true;
}

std::vector<std::string> ChannelTable::expire(Clock::time_point cutoff) {
  std::vector<std::string> out;
  if (idle_ == 0) return out;
  for (auto it = map_.begin(); it != map_.end();) {
    if (it->second.listeners.empty() && it->second.idle_since <= cutoff) {
      out.push_back(it->first);
      it = map_.erase(it);
      --idle_;
    } else {
      ++it;
    }
  }
  return out;
}

void ChannelTable::heard(const std::string& channel, Clock::time_point at) {
  auto it = map_.find(channel);
  if (it != map_.end()) it->second.heard = at;
}

bool ChannelTable::heard_since(const std::string& channel, Clock::time_point since) const {
  auto it = map_.find(channel);
  return it != map_.end() && it->second.heard >= since;
}

std::vector<ChannelTable::ListenerId> ChannelTable::listeners(const std::string& channel) const {
  auto it = map_.find(channel);
  if (it == map_.end()) return {};
  return it->second.listeners.ids();
}

std::vector<std::string> ChannelTable::channels() const {
  std::vector<std::string> out;
  out.reserve(map_.size());
  for (const auto& [channel, _] : map_) out.push_back(channel);
  return out;
}

bool ChannelTable::contains(const std::string& channel) const { return map_.contains(channel); }

PushEvent read_push(const Reply& reply) {
  PushEvent e;
  if (reply.is_error()) {
    e.kind = PushEvent::Kind::kError;
    e.error = reply.str;
    return e;
  }
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 3) return e;
  const auto& kind = reply.elements[0];
  const auto& channel = reply.elements[1];
  if (kind.type != Reply::Type::kString || channel.type != Reply::Type::kString) return e;
  // The sharded forms (smessage, ...) come from a Redis Cluster node.
  if (kind.str == "message" || kind.str == "smessage") {
    e.kind = PushEvent::Kind::kMessage;
  } else if (kind.str == "subscribe" || kind.str == "ssubscribe") {
    e.kind = PushEvent::Kind::kSubscribe;
  } else if (kind.str == "unsubscribe" || kind.str == "sunsubscribe") {
    e.kind = PushEvent::Kind::kUnsubscribe;
  } else {
    return e;
  }
  e.channel = channel.str;
  return e;
}

std::vector<std::string> subscription_commands(std::string_view verb,
                                               const std::vector<std::string>& channels,
                                               std::size_t per_command) {
  std::vector<std::string> out;
  per_command = std::max<std::size_t>(per_command, 1);
  for (std::size_t i = 0; i < channels.size(); i += per_command) {
    const std::size_t end = std::min(channels.size(), i + per_command);
    std::vector<std::string_view> argv;
    argv.reserve(1 + end - i);
    argv.push_back(verb);
    for (std::size_t j = i; j < end; ++j) argv.push_back(channels[j]);
    out.push_back(format_command(argv));
  }
  return out;
}

}  // namespace redlock::detail
