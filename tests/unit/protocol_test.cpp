// The RESP codec: exact command bytes, and the incremental reply parser fed
// whole, split and batched input, and malformed input.
#include "protocol.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace redlock::detail {
namespace {

using namespace std::string_literals;
using Type = Reply::Type;

// Feeds `bytes` and takes out every complete reply. Fails the test on error.
std::vector<Reply> parse_all(ReplyParser& parser, std::string_view bytes) {
  std::vector<Reply> out;
  const auto fed = parser.feed(bytes.data(), bytes.size());
  EXPECT_TRUE(fed) << fed.error();
  if (!fed) return out;
  for (;;) {
    auto r = parser.next();
    EXPECT_TRUE(r) << r.error();
    if (!r || !r->has_value()) break;
    out.push_back(std::move(**r));
  }
  return out;
}

// Parses exactly one reply out of `bytes`.
Reply parse_one(std::string_view bytes) {
  ReplyParser parser;
  auto replies = parse_all(parser, bytes);
  EXPECT_EQ(replies.size(), 1u) << "input: " << bytes;
  return replies.empty() ? Reply{} : std::move(replies.front());
}

// --------------------------------------------------------- format_command

TEST(FormatCommand, ExactRespBytes) {
  EXPECT_EQ(format_command({"SET", "k", "v"}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
  EXPECT_EQ(format_command({"PING"}), "*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(format_command({"GET", ""}), "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
  EXPECT_EQ(format_command({"GET", "ten bytes!"}), "*2\r\n$3\r\nGET\r\n$10\r\nten bytes!\r\n");
}

TEST(FormatCommand, BinarySafeArguments) {
  const std::string with_nul = "a\0b"s;
  const std::string with_crlf = "x\r\ny";
  ASSERT_EQ(with_nul.size(), 3u);
  EXPECT_EQ(format_command({"SET", with_nul, with_crlf}),
            "*3\r\n$3\r\nSET\r\n$3\r\na\0b\r\n$4\r\nx\r\ny\r\n"s);
  const std::string all_bytes = [] {
    std::string s;
    for (int c = 0; c < 256; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  EXPECT_EQ(format_command({"SET", "k", all_bytes}),
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$256\r\n" + all_bytes + "\r\n");
}

TEST(FormatCommand, ParsesBackToTheSameArguments) {
  // A command is itself a valid RESP array of bulk strings.
  const std::vector<std::string_view> argv = {"SET", std::string_view("a\0b", 3), "x\r\ny", ""};
  const Reply r = parse_one(format_command(argv));
  ASSERT_EQ(r.type, Type::kArray);
  ASSERT_EQ(r.elements.size(), argv.size());
  for (std::size_t i = 0; i < argv.size(); ++i) {
    EXPECT_EQ(r.elements[i].type, Type::kString) << i;
    EXPECT_EQ(r.elements[i].str, argv[i]) << i;
  }
}

// What hiredis's own formatter writes for `argv`: the reference the encoder
// must match byte for byte.
std::string hiredis_format(const std::vector<std::string_view>& argv) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  for (auto a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  char* raw = nullptr;
  const int n =
      redisFormatCommandArgv(&raw, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  EXPECT_GE(n, 0);
  if (n < 0 || raw == nullptr) return {};
  std::string out(raw, static_cast<std::size_t>(n));
  redisFreeCommand(raw);
  return out;
}

TEST(FormatCommand, SameBytesAsHiredis) {
  const std::string all_bytes = [] {
    std::string s;
    for (int c = 0; c < 256; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  const std::string long_arg(100000, 'x');
  const std::string nine(9, 'n');
  const std::string ten(10, 't');
  const std::string ninety_nine(99, 'n');
  const std::string hundred(100, 'h');
  const std::vector<std::vector<std::string_view>> cases = {
      {"PING"},
      {""},
      {"", ""},
      {"GET", ""},
      {"SET", std::string_view("a\0b", 3), "x\r\ny"},
      {"SET", "k", all_bytes},
      {"SET", "k", long_arg},
      {"SET", nine, ten, ninety_nine, hundred},
      {"EVALSHA", kReleaseScript.sha, "1", "lock:a", "0123456789abcdef0123456789abcdef"},
      {"EVAL", kExtendScript.body, "2", "a", "b", "tok", "500", "1"},
  };
  for (const auto& argv : cases) {
    EXPECT_EQ(format_command(argv), hiredis_format(argv)) << "argc " << argv.size();
  }
  // Many arguments (argc with several digits), of every length up to 300.
  std::vector<std::string> owned;
  for (std::size_t len = 0; len <= 300; ++len) owned.push_back(std::string(len, 'a'));
  const std::vector<std::string_view> many(owned.begin(), owned.end());
  EXPECT_EQ(format_command(many), hiredis_format(many));
  // Random binary arguments.
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string> args(1 + rng() % 12);
    for (auto& a : args) {
      a.resize(rng() % (round % 2 == 0 ? 20 : 5000));
      for (auto& c : a) c = static_cast<char>(rng());
    }
    const std::vector<std::string_view> argv(args.begin(), args.end());
    ASSERT_EQ(format_command(argv), hiredis_format(argv)) << "round " << round;
  }
}

TEST(FormatCommand, AppendsAfterWhatIsThere) {
  std::string out = "before";
  const std::string_view set[] = {"SET", "k", "v"};
  append_command(out, set);
  const std::string_view get[] = {"GET", "k"};
  append_command(out, get);
  EXPECT_EQ(out, "before*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST(SetNxPxCommand, ExactBytes) {
  EXPECT_EQ(set_nx_px_command("lock:a", "0123456789abcdef0123456789abcdef", 10000),
            "*6\r\n$3\r\nSET\r\n$6\r\nlock:a\r\n$32\r\n0123456789abcdef0123456789abcdef\r\n"
            "$2\r\nNX\r\n$2\r\nPX\r\n$5\r\n10000\r\n");
  EXPECT_EQ(set_nx_px_command("k", "t", 1),
            "*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nt\r\n$2\r\nNX\r\n$2\r\nPX\r\n$1\r\n1\r\n");
  // The largest ttl validation allows (30 days) is printed in full.
  EXPECT_EQ(set_nx_px_command("k", "t", 2592000000LL),
            "*6\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nt\r\n$2\r\nNX\r\n$2\r\nPX\r\n"
            "$10\r\n2592000000\r\n");
}

TEST(ScriptCommand, EvalshaShape) {
  const std::string sha(kReleaseScript.sha);
  EXPECT_EQ(
      script_command(kReleaseScript, true, {"lock:a"}, {"tok"}),
      "*5\r\n$7\r\nEVALSHA\r\n$40\r\n" + sha + "\r\n$1\r\n1\r\n$6\r\nlock:a\r\n$3\r\ntok\r\n");
}

TEST(ScriptCommand, EvalShapeWithSeveralKeysAndArguments) {
  const std::string body(kExtendScript.body);
  EXPECT_EQ(script_command(kExtendScript, false, {"a", "bc"}, {"tok", "500", "0"}),
            "*8\r\n$4\r\nEVAL\r\n$" + std::to_string(body.size()) + "\r\n" + body +
                "\r\n$1\r\n2\r\n$1\r\na\r\n$2\r\nbc\r\n$3\r\ntok\r\n$3\r\n500\r\n$1\r\n0\r\n");
}

TEST(EvalForm, IsTheEvalOfEveryScriptsEvalsha) {
  const std::vector<std::string> keys = {"redlock:{a}:lock:a", std::string("b\r\n\0c", 6)};
  for (const auto& script : kAllScripts) {
    EXPECT_EQ(eval_form(script_command(script, true, keys, {"tok", "", "123"})),
              script_command(script, false, keys, {"tok", "", "123"}))
        << script.sha;
  }
}

TEST(EvalForm, IsEmptyForAnythingElse) {
  EXPECT_EQ(eval_form(""), "");
  EXPECT_EQ(eval_form(set_nx_px_command("k", "t", 1000)), "");
  EXPECT_EQ(eval_form(script_command(kReleaseScript, false, {"k"}, {"t"})), "");
  const Script unknown{"return 1", "e0e1f9fabfc9d4800c877a703b823ac0578ff831"};
  EXPECT_EQ(eval_form(script_command(unknown, true, {"k"}, {"t"})), "");
  const std::string cut = script_command(kReleaseScript, true, {"k"}, {"t"});
  for (std::size_t n = 0; n < 40; ++n) EXPECT_EQ(eval_form(cut.substr(0, n)), "") << n;
}

TEST(Scripts, ShasAreFortyLowercaseHexCharactersAndDistinct) {
  // That each is the SHA1 of its body is checked against SCRIPT LOAD in the
  // integration tests.
  std::set<std::string_view> seen;
  for (const auto& script : kAllScripts) {
    ASSERT_EQ(script.sha.size(), 40u);
    for (const char c : script.sha) {
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << "character '" << c << "'";
    }
    EXPECT_TRUE(seen.insert(script.sha).second);
  }
}

TEST(ReleaseScript, ComparesBeforeDeleting) {
  EXPECT_NE(kReleaseScript.body.find("get"), std::string_view::npos);
  EXPECT_NE(kReleaseScript.body.find("KEYS"), std::string_view::npos);
  EXPECT_NE(kReleaseScript.body.find("ARGV[1]"), std::string_view::npos);
  EXPECT_NE(kReleaseScript.body.find("del"), std::string_view::npos);
}

// ------------------------------------------------------------ ReplyParser

TEST(ReplyParser, Status) {
  const Reply r = parse_one("+OK\r\n");
  EXPECT_EQ(r.type, Type::kStatus);
  EXPECT_EQ(r.str, "OK");
  EXPECT_TRUE(r.is_status("OK"));
  EXPECT_FALSE(r.is_status("QUEUED"));
  EXPECT_FALSE(r.is_error());
}

TEST(ReplyParser, Nil) {
  const Reply r = parse_one("$-1\r\n");
  EXPECT_EQ(r.type, Type::kNil);
  EXPECT_TRUE(r.str.empty());
  EXPECT_FALSE(r.is_status("OK"));
  EXPECT_EQ(parse_one("*-1\r\n").type, Type::kNil);
}

TEST(ReplyParser, Integer) {
  Reply r = parse_one(":1\r\n");
  EXPECT_EQ(r.type, Type::kInteger);
  EXPECT_EQ(r.integer, 1);
  r = parse_one(":0\r\n");
  EXPECT_EQ(r.type, Type::kInteger);
  EXPECT_EQ(r.integer, 0);
  r = parse_one(":-42\r\n");
  EXPECT_EQ(r.integer, -42);
  r = parse_one(":9223372036854775807\r\n");
  EXPECT_EQ(r.integer, 9223372036854775807LL);
}

TEST(ReplyParser, Error) {
  const Reply r = parse_one("-NOSCRIPT No matching script. Please use EVAL.\r\n");
  EXPECT_EQ(r.type, Type::kError);
  EXPECT_TRUE(r.is_error());
  EXPECT_EQ(r.str, "NOSCRIPT No matching script. Please use EVAL.");
  EXPECT_FALSE(r.is_status("OK"));
}

TEST(ReplyParser, BulkString) {
  Reply r = parse_one("$5\r\nhello\r\n");
  EXPECT_EQ(r.type, Type::kString);
  EXPECT_EQ(r.str, "hello");
  r = parse_one("$0\r\n\r\n");
  EXPECT_EQ(r.type, Type::kString);
  EXPECT_EQ(r.str, "");
  r = parse_one("$7\r\na\0b\r\nc\r\r\n"s);
  EXPECT_EQ(r.type, Type::kString);
  EXPECT_EQ(r.str, "a\0b\r\nc\r"s);
}

TEST(ReplyParser, NestedArray) {
  const Reply r = parse_one("*4\r\n:1\r\n*2\r\n$3\r\nfoo\r\n$-1\r\n+OK\r\n*0\r\n");
  ASSERT_EQ(r.type, Type::kArray);
  ASSERT_EQ(r.elements.size(), 4u);
  EXPECT_EQ(r.elements[0].type, Type::kInteger);
  EXPECT_EQ(r.elements[0].integer, 1);
  ASSERT_EQ(r.elements[1].type, Type::kArray);
  ASSERT_EQ(r.elements[1].elements.size(), 2u);
  EXPECT_EQ(r.elements[1].elements[0].type, Type::kString);
  EXPECT_EQ(r.elements[1].elements[0].str, "foo");
  EXPECT_EQ(r.elements[1].elements[1].type, Type::kNil);
  EXPECT_TRUE(r.elements[2].is_status("OK"));
  EXPECT_EQ(r.elements[3].type, Type::kArray);
  EXPECT_TRUE(r.elements[3].elements.empty());
}

TEST(ReplyParser, NothingFedMeansNoReply) {
  ReplyParser parser;
  auto r = parser.next();
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->has_value());
  const auto fed = parser.feed("", 0);
  ASSERT_TRUE(fed) << fed.error();
  r = parser.next();
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->has_value());
}

TEST(ReplyParser, ReplySplitByteByByte) {
  const std::string bytes = "*3\r\n$5\r\nhello\r\n:-7\r\n-ERR oops\r\n";
  ReplyParser parser;
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    const auto fed = parser.feed(&bytes[i], 1);
    ASSERT_TRUE(fed) << "byte " << i << ": " << fed.error();
    const auto r = parser.next();
    ASSERT_TRUE(r) << "byte " << i << ": " << r.error();
    ASSERT_FALSE(r->has_value()) << "a reply came out after only " << i + 1 << " bytes";
  }
  const auto fed = parser.feed(&bytes.back(), 1);
  ASSERT_TRUE(fed) << fed.error();
  auto r = parser.next();
  ASSERT_TRUE(r) << r.error();
  ASSERT_TRUE(r->has_value());
  const Reply& reply = **r;
  ASSERT_EQ(reply.type, Type::kArray);
  ASSERT_EQ(reply.elements.size(), 3u);
  EXPECT_EQ(reply.elements[0].str, "hello");
  EXPECT_EQ(reply.elements[1].integer, -7);
  EXPECT_TRUE(reply.elements[2].is_error());
  EXPECT_EQ(reply.elements[2].str, "ERR oops");
  r = parser.next();
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->has_value());
}

TEST(ReplyParser, LargeBulkStringInUnevenChunks) {
  const std::string payload(100000, 'x');
  const std::string bytes = "$100000\r\n" + payload + "\r\n";
  ReplyParser parser;
  std::size_t pos = 0;
  std::size_t chunk = 1;
  std::optional<Reply> got;
  while (pos < bytes.size()) {
    const std::size_t n = std::min(chunk, bytes.size() - pos);
    const auto fed = parser.feed(bytes.data() + pos, n);
    ASSERT_TRUE(fed) << fed.error();
    pos += n;
    chunk = chunk * 3 + 1;
    auto r = parser.next();
    ASSERT_TRUE(r) << r.error();
    if (r->has_value()) {
      ASSERT_EQ(pos, bytes.size()) << "a reply came out before all of it was fed";
      got = std::move(*r);
    }
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type, Type::kString);
  EXPECT_EQ(got->str, payload);
}

TEST(ReplyParser, SeveralRepliesInOneFeed) {
  ReplyParser parser;
  const auto replies = parse_all(parser, "+OK\r\n$-1\r\n:1\r\n-NOSCRIPT x\r\n$3\r\nabc\r\n");
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_TRUE(replies[0].is_status("OK"));
  EXPECT_EQ(replies[1].type, Type::kNil);
  EXPECT_EQ(replies[2].type, Type::kInteger);
  EXPECT_EQ(replies[2].integer, 1);
  EXPECT_TRUE(replies[3].is_error());
  EXPECT_EQ(replies[3].str, "NOSCRIPT x");
  EXPECT_EQ(replies[4].str, "abc");
}

TEST(ReplyParser, CompleteRepliesComeOutBeforeAnIncompleteOne) {
  ReplyParser parser;
  auto replies = parse_all(parser, "+OK\r\n:5\r\n$10\r\nabc");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(replies[0].is_status("OK"));
  EXPECT_EQ(replies[1].integer, 5);
  replies = parse_all(parser, "defghij\r\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].str, "abcdefghij");
}

TEST(ReplyParser, RepliesTakenOutStayIntactWhileTheNextIsParsed) {
  ReplyParser parser;
  auto first = parse_all(parser, "*2\r\n$3\r\nabc\r\n*1\r\n:7\r\n");
  ASSERT_EQ(first.size(), 1u);
  // The next reply arrives in pieces; the first one must not change.
  auto none = parse_all(parser, "*3\r\n$1\r\nx\r\n");
  EXPECT_TRUE(none.empty());
  auto second = parse_all(parser, "+OK\r\n-ERR no\r\n");
  ASSERT_EQ(second.size(), 1u);
  ASSERT_EQ(first[0].type, Type::kArray);
  ASSERT_EQ(first[0].elements.size(), 2u);
  EXPECT_EQ(first[0].elements[0].str, "abc");
  ASSERT_EQ(first[0].elements[1].elements.size(), 1u);
  EXPECT_EQ(first[0].elements[1].elements[0].integer, 7);
  ASSERT_EQ(second[0].elements.size(), 3u);
  EXPECT_EQ(second[0].elements[0].str, "x");
  EXPECT_TRUE(second[0].elements[1].is_status("OK"));
  EXPECT_TRUE(second[0].elements[2].is_error());
  EXPECT_EQ(second[0].elements[2].str, "ERR no");
}

TEST(ReplyParser, DeeplyNestedArrays) {
  // hiredis 0.14 allows 7 levels of nesting (its task stack has 9 slots).
  std::string bytes;
  for (int i = 0; i < 7; ++i) bytes += "*1\r\n";
  bytes += ":5\r\n";
  const Reply r = parse_one(bytes);
  const Reply* cur = &r;
  for (int i = 0; i < 7; ++i) {
    ASSERT_EQ(cur->type, Type::kArray) << "level " << i;
    ASSERT_EQ(cur->elements.size(), 1u) << "level " << i;
    cur = &cur->elements[0];
  }
  EXPECT_EQ(cur->type, Type::kInteger);
  EXPECT_EQ(cur->integer, 5);
}

TEST(ReplyParser, AbsurdArrayLengthIsAnErrorNotAnAllocation) {
  ReplyParser parser;
  const std::string_view bad = "*2000000000\r\n";
  const auto fed = parser.feed(bad.data(), bad.size());
  ASSERT_TRUE(fed) << fed.error();
  const auto r = parser.next();
  ASSERT_FALSE(r) << "a 2e9-element array was accepted";
  EXPECT_EQ(r.error().code(), ErrorCode::kInternal) << r.error();
}

TEST(ReplyParser, DestroyedWithAReplyHalfParsed) {
  // Under ASan: nothing leaks and nothing is freed twice.
  ReplyParser parser;
  const std::string_view part = "*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n";
  ASSERT_TRUE(parser.feed(part.data(), part.size()));
  const auto r = parser.next();
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(r->has_value());
}

TEST(ReplyParser, UnknownTypeByteIsAProtocolError) {
  for (const std::string_view bad : {"?oops\r\n", "!bad\r\n", "hello\r\n"}) {
    ReplyParser parser;
    const auto fed = parser.feed(bad.data(), bad.size());
    if (fed) {
      const auto r = parser.next();
      ASSERT_FALSE(r) << "input \"" << bad << "\" parsed as a reply";
      EXPECT_EQ(r.error().code(), ErrorCode::kInternal) << r.error();
      EXPECT_FALSE(r.error().message().empty());
    } else {
      EXPECT_EQ(fed.error().code(), ErrorCode::kInternal) << fed.error();
    }
  }
}

TEST(ReplyParser, ErrorStateIsSticky) {
  ReplyParser parser;
  const std::string_view bad = "?oops\r\n";
  ASSERT_TRUE(parser.feed(bad.data(), bad.size()));
  const auto first = parser.next();
  ASSERT_FALSE(first) << "malformed input parsed as a reply";
  EXPECT_EQ(first.error().code(), ErrorCode::kInternal) << first.error();

  // Once broken, the stream cannot be trusted: good bytes do not revive it.
  const std::string_view good = "+OK\r\n";
  const auto fed = parser.feed(good.data(), good.size());
  if (fed) {
    const auto r = parser.next();
    ASSERT_FALSE(r) << "a reply came out of a broken stream";
    EXPECT_EQ(r.error().code(), ErrorCode::kInternal) << r.error();
  } else {
    EXPECT_EQ(fed.error().code(), ErrorCode::kInternal) << fed.error();
  }
}

TEST(ReplyParser, ValidRepliesBeforeTheErrorStillComeOut) {
  ReplyParser parser;
  const std::string_view bytes = "+OK\r\n?oops\r\n";
  ASSERT_TRUE(parser.feed(bytes.data(), bytes.size()));
  const auto first = parser.next();
  ASSERT_TRUE(first) << first.error();
  ASSERT_TRUE(first->has_value());
  EXPECT_TRUE((*first)->is_status("OK"));
  const auto second = parser.next();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kInternal) << second.error();
}

}  // namespace
}  // namespace redlock::detail
