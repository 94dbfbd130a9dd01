// Replays a libFuzzer corpus through a fuzz target's entry point, without
// libFuzzer: every file of each directory (or each file) named on the command
// line is passed once to LLVMFuzzerTestOneInput, in name order. Linked with a
// fuzz target's source, it lets any compiler and any target (a cross build
// under qemu-user) check the corpus the Clang fuzzer built. A target reports a
// breach by aborting or trapping, so reaching the end means every input held.
//
// A target's LLVMFuzzerInitialize, when it has one, runs first, as libFuzzer
// runs it.
//
// usage: fuzz_replay CORPUS_DIR_OR_FILE...
// Fails when an argument cannot be read or when no input was found at all,
// so a missing corpus cannot pass as an empty one.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Optional in a target, as with libFuzzer: called once before the first input.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool read_file(const std::string& path, std::vector<char>& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return !in.bad();
}

// The regular files of a directory, sorted; a file stands for itself.
bool inputs_of(const std::string& path, std::vector<std::string>& out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) {
        out.push_back(path);
        return true;
    }
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return false;
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string file = path + "/" + entry->d_name;
        struct stat fst {};
        if (::stat(file.c_str(), &fst) == 0 && S_ISREG(fst.st_mode)) names.push_back(file);
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    out.insert(out.end(), names.begin(), names.end());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
    std::vector<std::string> inputs;
    for (int i = 1; i < argc; ++i) {
        if (!inputs_of(argv[i], inputs)) {
            std::fprintf(stderr, "fuzz_replay: cannot read %s\n", argv[i]);
            return 1;
        }
    }
    if (inputs.empty()) {
        std::fprintf(stderr, "fuzz_replay: no input\n");
        return 1;
    }
    std::vector<char> data;
    for (const std::string& path : inputs) {
        if (!read_file(path, data)) {
            std::fprintf(stderr, "fuzz_replay: cannot read %s\n", path.c_str());
            return 1;
        }
        // libFuzzer never passes a null pointer, even for an empty input.
        const std::uint8_t empty = 0;
        // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the file's bytes
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
        LLVMFuzzerTestOneInput(data.empty() ? &empty : bytes, data.size());
    }
    std::printf("%zu inputs replayed\n", inputs.size());
    return 0;
}
