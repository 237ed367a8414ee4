// The README's example: the program examples/readme_example.cpp, shown in
// README.md as it is, run against a cluster on the ports it names.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cluster_fixture.hpp"
#include "redlock/tools/subprocess.hpp"

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The text between two markers of `text` (exclusive), or "" if absent.
std::string between(const std::string& text, const std::string& begin, const std::string& end) {
  const auto a = text.find(begin);
  if (a == std::string::npos) return "";
  const auto from = a + begin.size();
  const auto b = text.find(end, from);
  return b == std::string::npos ? "" : text.substr(from, b - from);
}

TEST(ReadmeExample, TheReadmeShowsTheExampleProgramAsItIs) {
  const auto readme = read_file(REDLOCK_README_PATH);
  const auto example = read_file(REDLOCK_README_EXAMPLE_PATH);
  const auto shown = between(readme, "## The library\n\n```cpp\n", "```\n");
  const auto program =
      between(example, "// --- begin README example (keep identical to README.md) ---\n",
              "// --- end README example ---\n");
  ASSERT_FALSE(shown.empty()) << "README.md has no C++ block under \"## The library\"";
  ASSERT_FALSE(program.empty()) << "examples/readme_example.cpp lost its markers";
  EXPECT_EQ(shown, program) << "README.md and examples/readme_example.cpp differ";
}

class ReadmeExampleTest : public redlock::testing::ClusterTest {
 protected:
  redlock::cluster::ClusterOptions cluster_options() const override {
    redlock::cluster::ClusterOptions o;
    o.base_port = 7001;
    return o;
  }
  void SetUp() override {
    auto started = redlock::cluster::LocalCluster::start(nodes_count(), cluster_options());
    if (!started) GTEST_SKIP() << "ports 7001-7005 are taken here: " << started.error();
    cluster_ = std::move(*started);
  }
};

TEST_F(ReadmeExampleTest, RunsAsWritten) {
  const auto dir = cluster().dir();
  redlock::tools::SpawnOptions o;
  o.argv = {REDLOCK_README_EXAMPLE_BINARY};
  o.stdout_path = dir / "example.out";
  o.stderr_path = dir / "example.err";
  auto child = redlock::tools::Subprocess::spawn(o);
  ASSERT_TRUE(child) << child.error().message;
  const auto status = child->wait_for(redlock::cluster::scaled(std::chrono::seconds(30)));
  ASSERT_TRUE(status.has_value()) << "the example did not finish";
  const auto out = read_file((dir / "example.out").c_str());
  EXPECT_EQ(redlock::tools::exit_code(*status), 0) << read_file((dir / "example.err").c_str());
  EXPECT_NE(out.find(" valid for "), std::string::npos) << out;
}

}  // namespace
