// pamcheck: a pamtester-compatible PAM test program built on handoff::pam.
//
//   pamcheck [-v] [-I item=value] [-E var=value] service user operation[(FLAGS)]...
//
// Same command line, result lines and exit codes as pamtester(1): 0 when every
// operation succeeded, 1 when one failed, 255 for a usage error. Unlike
// pamtester it survives modules that send info messages with no reply slot,
// refuses overlong answers instead of truncating them, and says why a
// conversation failed. Extras: --answers FILE (one answer per line),
// --non-interactive, --timeout SECONDS, --print-env, --confdir DIR, --help.
//
// Prompts read standard input when it is not a terminal (as pamtester does),
// else /dev/tty. At a prompt every signal that ends or stops a process leaves
// the terminal as it was found (pam::terminal). Ctrl-C ends the transaction
// (pam_end runs, answers are wiped) and then pamcheck dies of SIGINT, as
// pamtester and any program interrupted at a shell do: a shell reports 130
// and a script running pamcheck stops, which an exit(130) would not achieve.
#include <handoff/pam.hpp>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace {

namespace pam = handoff::pam;

constexpr int exit_ok = 0;
constexpr int exit_failed = 1;
constexpr int exit_usage = 255;
// Not an exit status: run() asks main() to die of SIGINT once PAM has ended.
constexpr int interrupted = -1;

// Set once from argv[0] in main, read by every message.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): see above
const char* program = "pamcheck";

struct operation {
    std::string name;
    int flags = 0;
};

struct options {
    bool verbose = false;
    bool interactive = true;
    bool print_env = false;
    int timeout_ms = -1;
    std::optional<std::string> answers_file;
    std::string confdir;  // empty: the system's configuration
    std::vector<std::pair<pam::item, std::string>> items;
    std::vector<std::string> env;
    std::string service;
    std::string user;
    std::vector<operation> operations;
};

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: %s [-v] [-I item=value] [-E var=value] service user operation[(FLAGS)]...\n"
        "\n"
        "operations: authenticate acct_mgmt open_session close_session chauthtok setcred\n"
        "flags:      PAM_SILENT PAM_DISALLOW_NULL_AUTHTOK PAM_ESTABLISH_CRED\n"
        "            PAM_DELETE_CRED PAM_REINITIALIZE_CRED PAM_REFRESH_CRED\n"
        "            PAM_CHANGE_EXPIRED_AUTHTOK, combined with | & ^ ~ and ( )\n"
        "items:      service user prompt tty ruser rhost\n"
        "\n"
        "  -v, --verbose          say what is being done\n"
        "  -I, --item ITEM=VALUE  set a PAM item before the operations\n"
        "  -E, --env VAR=VALUE    put VAR=VALUE into the PAM environment\n"
        "  --answers FILE         answer prompts from FILE, one answer per line\n"
        "  --non-interactive      fail prompts instead of asking; still show messages\n"
        "  --timeout SECONDS      give up on a prompt after SECONDS\n"
        "  --print-env            print the PAM environment after open_session\n"
        "  --confdir DIR          read the service file from DIR (pam_start_confdir)\n"
        "  -h, --help             this text\n",
        program);
}

// --- flag expressions: NAME, ~x, x & y, x ^ y, x | y, ( x ) -------------------

class flag_parser {
public:
    explicit flag_parser(std::string_view text) : text_(text) {}

    // The flags, or nullopt; then unknown_name() tells an unknown constant
    // (pamtester: exit 1) from a syntax error (exit 255). Empty means 0.
    std::optional<int> parse() {
        skip_space();
        if (pos_ == text_.size()) return 0;
        std::optional<int> v = parse_or();
        skip_space();
        if (!v || pos_ != text_.size()) return std::nullopt;
        return v;
    }

    const std::optional<std::string>& unknown_name() const { return unknown_; }

private:
    void skip_space() {
        while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    bool eat(char c) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    std::optional<int> parse_or() {
        std::optional<int> v = parse_xor();
        while (v && eat('|')) {
            std::optional<int> r = parse_xor();
            if (!r) return std::nullopt;
            v = *v | *r;
        }
        return v;
    }
    std::optional<int> parse_xor() {
        std::optional<int> v = parse_and();
        while (v && eat('^')) {
            std::optional<int> r = parse_and();
            if (!r) return std::nullopt;
            v = *v ^ *r;
        }
        return v;
    }
    std::optional<int> parse_and() {
        std::optional<int> v = parse_unary();
        while (v && eat('&')) {
            std::optional<int> r = parse_unary();
            if (!r) return std::nullopt;
            v = *v & *r;
        }
        return v;
    }
    std::optional<int> parse_unary() {
        if (eat('~')) {
            std::optional<int> v = parse_unary();
            if (!v) return std::nullopt;
            return ~*v;
        }
        if (eat('(')) {
            std::optional<int> v = parse_or();
            if (!v || !eat(')')) return std::nullopt;
            return v;
        }
        skip_space();
        std::size_t start = pos_;
        while (pos_ < text_.size() &&
               (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
            ++pos_;
        }
        std::string_view word = text_.substr(start, pos_ - start);
        if (word.empty()) return std::nullopt;
        if (std::isdigit(static_cast<unsigned char>(word.front()))) return number(word);
        std::optional<int> v = flag_value(word);
        if (!v && !unknown_) unknown_ = std::string(word);
        return v;
    }
    static std::optional<int> number(std::string_view word) {
        std::string digits(word);
        char* end = nullptr;
        long v = std::strtol(digits.c_str(), &end, 0);
        if (*end != '\0' || v < 0 || v > 0x7fffffffL) return std::nullopt;
        return static_cast<int>(v);
    }
    static std::optional<int> flag_value(std::string_view name) {
        static const std::pair<std::string_view, int> names[] = {
            {"PAM_SILENT", PAM_SILENT},
            {"PAM_DISALLOW_NULL_AUTHTOK", PAM_DISALLOW_NULL_AUTHTOK},
            {"PAM_ESTABLISH_CRED", PAM_ESTABLISH_CRED},
            {"PAM_DELETE_CRED", PAM_DELETE_CRED},
            {"PAM_REINITIALIZE_CRED", PAM_REINITIALIZE_CRED},
            {"PAM_REFRESH_CRED", PAM_REFRESH_CRED},
            {"PAM_CHANGE_EXPIRED_AUTHTOK", PAM_CHANGE_EXPIRED_AUTHTOK},
        };
        for (const auto& [n, v] : names) {
            if (n == name) return v;
        }
        return std::nullopt;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::optional<std::string> unknown_;
};

bool known_operation(std::string_view name) {
    for (std::string_view op :
         {"authenticate", "acct_mgmt", "open_session", "close_session", "chauthtok", "setcred"}) {
        if (op == name) return true;
    }
    return false;
}

std::optional<pam::item> item_named(std::string_view name) {
    if (name == "service") return pam::item::service;
    if (name == "user") return pam::item::user;
    if (name == "prompt") return pam::item::user_prompt;
    if (name == "tty") return pam::item::tty;
    if (name == "ruser") return pam::item::ruser;
    if (name == "rhost") return pam::item::rhost;
    return std::nullopt;
}

// Parses argv; on a usage error prints why and returns nullopt.
std::optional<options> parse_arguments(int argc, char** argv, int& exit_code) {
    options opt;
    std::vector<std::string> positional;
    exit_code = exit_usage;
    auto value_of = [&](int& i, std::string_view arg,
                        std::string_view name) -> std::optional<std::string> {
        // "-Ifoo=bar", "-I foo=bar", "--item=foo=bar", "--item foo=bar"
        if (arg.size() > name.size() && arg.substr(0, name.size()) == name) {
            std::string_view rest = arg.substr(name.size());
            if (rest.front() == '=' && name.size() > 2) rest.remove_prefix(1);
            return std::string(rest);
        }
        if (i + 1 >= argc) return std::nullopt;
        return std::string(argv[++i]);
    };
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            exit_code = exit_ok;
            return std::nullopt;
        }
        if (arg == "-v" || arg == "--verbose") {
            opt.verbose = true;
        } else if (arg == "--non-interactive") {
            opt.interactive = false;
        } else if (arg == "--print-env") {
            opt.print_env = true;
        } else if (arg.rfind("--answers", 0) == 0) {
            opt.answers_file = value_of(i, arg, "--answers");
            if (!opt.answers_file) {
                std::fprintf(stderr, "%s: --answers needs a file\n", program);
                return std::nullopt;
            }
        } else if (arg.rfind("--confdir", 0) == 0) {
            std::optional<std::string> dir = value_of(i, arg, "--confdir");
            if (!dir || dir->empty()) {
                std::fprintf(stderr, "%s: --confdir needs a directory\n", program);
                return std::nullopt;
            }
            opt.confdir = std::move(*dir);
        } else if (arg.rfind("--timeout", 0) == 0) {
            std::optional<std::string> v = value_of(i, arg, "--timeout");
            char* end = nullptr;
            long seconds = v ? std::strtol(v->c_str(), &end, 10) : -1;
            if (!v || end == v->c_str() || *end != '\0' || seconds < 0 || seconds > 86400) {
                std::fprintf(stderr, "%s: --timeout needs seconds (0 to 86400)\n", program);
                return std::nullopt;
            }
            opt.timeout_ms = static_cast<int>(seconds * 1000);
        } else if (arg.rfind("-I", 0) == 0 || arg.rfind("--item", 0) == 0) {
            std::optional<std::string> v = value_of(i, arg, arg[1] == 'I' ? "-I" : "--item");
            std::size_t eq = v ? v->find('=') : std::string::npos;
            if (eq == std::string::npos) {
                std::fprintf(stderr, "%s: -I needs item=value\n", program);
                return std::nullopt;
            }
            std::optional<pam::item> which = item_named(std::string_view(*v).substr(0, eq));
            if (!which) {
                std::fprintf(stderr, "%s: Unknown item type \"%s\"\n", program,
                             v->substr(0, eq).c_str());
                return std::nullopt;
            }
            opt.items.emplace_back(*which, v->substr(eq + 1));
        } else if (arg.rfind("-E", 0) == 0 || arg.rfind("--env", 0) == 0) {
            std::optional<std::string> v = value_of(i, arg, arg[1] == 'E' ? "-E" : "--env");
            if (!v || v->find('=') == std::string::npos) {
                std::fprintf(stderr, "%s: -E needs var=value\n", program);
                return std::nullopt;
            }
            opt.env.push_back(*v);
        } else if (arg.size() > 1 && arg[0] == '-') {
            std::fprintf(stderr, "%s: Unknown option \"%s\"\n", program, argv[i]);
            usage(stderr);
            return std::nullopt;
        } else {
            positional.emplace_back(arg);
        }
    }
    if (positional.empty()) {
        usage(stderr);
        return std::nullopt;
    }
    if (positional.size() < 2) {
        std::fprintf(stderr, "%s: please specify user name.\n", program);
        return std::nullopt;
    }
    if (positional.size() < 3) {
        std::fprintf(stderr, "%s: specify one or more operations.\n", program);
        return std::nullopt;
    }
    opt.service = positional[0];
    opt.user = positional[1];
    for (std::size_t k = 2; k < positional.size(); ++k) {
        std::string_view spec = positional[k];
        operation op;
        std::size_t paren = spec.find('(');
        if (paren == std::string_view::npos) {
            op.name = std::string(spec);
        } else {
            if (spec.back() != ')') {
                std::fprintf(stderr, "%s: incorrect op_name spec \"%s\".\n", program,
                             positional[k].c_str());
                return std::nullopt;
            }
            op.name = std::string(spec.substr(0, paren));
            std::string_view inside = spec.substr(paren + 1, spec.size() - paren - 2);
            flag_parser parser(inside);
            std::optional<int> flags = parser.parse();
            if (!flags && parser.unknown_name()) {
                std::fprintf(stderr, "%s: undefined constant \"%s\"\n", program,
                             parser.unknown_name()->c_str());
                exit_code = exit_failed;
                return std::nullopt;
            }
            if (!flags) {
                std::fprintf(stderr, "%s: incorrect op_name spec \"%s\".\n", program,
                             positional[k].c_str());
                return std::nullopt;
            }
            op.flags = *flags;
        }
        if (!known_operation(op.name)) {
            std::fprintf(stderr, "%s: Unsupported operation \"%s\"\n", program, op.name.c_str());
            exit_code = exit_failed;
            return std::nullopt;
        }
        opt.operations.push_back(op);
    }
    exit_code = exit_ok;
    return opt;
}

std::optional<std::vector<std::string>> read_answers(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::vector<std::string> answers;
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        answers.push_back(std::move(line));
        handoff::secure_clear(line);
    }
    return answers;
}

const char* success_line(const std::string& op) {
    if (op == "authenticate") return "successfully authenticated";
    if (op == "acct_mgmt") return "account management done.";
    if (op == "open_session") return "successfully opened a session";
    if (op == "close_session") return "session has successfully been closed.";
    if (op == "chauthtok") return "authentication token altered successfully.";
    return "credential info has successfully been set.";
}

pam::status run_operation(pam::transaction& tx, const operation& op) {
    if (op.name == "authenticate") return tx.authenticate(op.flags);
    if (op.name == "acct_mgmt") return tx.acct_mgmt(op.flags);
    if (op.name == "open_session") return tx.open_session(op.flags);
    if (op.name == "close_session") return tx.close_session(op.flags);
    if (op.name == "chauthtok") return tx.chauthtok(op.flags);
    return tx.setcred(op.flags == 0 ? static_cast<int>(PAM_ESTABLISH_CRED) : op.flags);
}

// Either ready handler, chosen at run time; a call at a time, so the
// terminal's Ctrl-C ends the whole call.
class any_handler {
public:
    explicit any_handler(pam::scripted s) : h_(std::move(s)) {}
    explicit any_handler(pam::terminal t) : h_(std::move(t)) {}
    void operator()(const pam::message_batch& batch, pam::reply_batch& replies) {
        if (auto* t = std::get_if<pam::terminal>(&h_)) {
            (*t)(batch, replies);
            return;
        }
        auto& s = std::get<pam::scripted>(h_);
        for (std::size_t i = 0; i < batch.size(); ++i) replies[i] = s(batch[i]);
    }

private:
    std::variant<pam::scripted, pam::terminal> h_;
};

int run(const options& opt) {
    std::optional<any_handler> handler;
    if (opt.answers_file) {
        std::optional<std::vector<std::string>> answers = read_answers(*opt.answers_file);
        if (!answers) {
            std::fprintf(stderr, "%s: cannot read answers from \"%s\"\n", program,
                         opt.answers_file->c_str());
            return exit_usage;
        }
        handler.emplace(pam::scripted(std::move(*answers), true));
    } else {
        pam::terminal_options t;
        t.input = pam::terminal_options::input_source::automatic;
        t.interrupt = pam::terminal_options::interrupt_action::cancel;
        t.interactive = opt.interactive;
        t.timeout_ms = opt.timeout_ms;
        handler.emplace(pam::terminal(t));
    }

    if (opt.verbose) {
        std::fprintf(stderr, "%s: invoking pam_start(%s, %s, ...)\n", program, opt.service.c_str(),
                     opt.user.c_str());
    }
    pam::transaction tx(opt.service, opt.user, std::move(*handler),
                        pam::start_options{opt.confdir});
    if (!tx.started()) {
        std::fprintf(stderr, "%s: pam_start failed: %s\n", program, tx.started().message());
        return exit_failed;
    }
    for (const auto& [which, value] : opt.items) {
        pam::status s = tx.set_item(which, value);
        if (!s) {
            std::fprintf(stderr, "%s: %s\n", program, s.message());
            return exit_failed;
        }
    }
    for (const std::string& var : opt.env) {
        pam::status s = tx.putenv(var);
        if (!s) {
            std::fprintf(stderr, "%s: %s\n", program, s.message());
            return exit_failed;
        }
    }
    for (const operation& op : opt.operations) {
        if (opt.verbose) {
            std::fprintf(stderr, "%s: performing operation - %s\n", program, op.name.c_str());
        }
        pam::status s = run_operation(tx, op);
        if (!s && s.conversation_failure() == pam::failure::cancelled) return interrupted;
        if (!s) {
            std::fprintf(stderr, "%s: %s\n", program, s.message());
            if (s.conversation_failure() != pam::failure::none) {
                std::fprintf(stderr, "%s: conversation failed: %s\n", program,
                             pam::to_string(s.conversation_failure()));
            }
            return exit_failed;
        }
        std::printf("%s: %s\n", program, success_line(op.name));
        static_cast<void>(std::fflush(stdout));  // the exit status reports the result
        if (op.name == "open_session" && opt.print_env) {
            for (std::string_view var : tx.getenvlist()) {
                std::printf("%.*s\n", static_cast<int>(var.size()), var.data());
            }
            static_cast<void>(std::fflush(stdout));  // the exit status reports the result
        }
    }
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 0 && argv[0] != nullptr) {
        const char* slash = std::strrchr(argv[0], '/');
        program = slash != nullptr ? slash + 1 : argv[0];
    }
    int code = exit_usage;
    std::optional<options> opt = parse_arguments(argc, argv, code);
    if (!opt) return code;
#if HANDOFF_HAS_EXCEPTIONS
    try {
        code = run(*opt);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return exit_failed;
    }
#else
    code = run(*opt);
#endif
    if (code == interrupted) {
        // The transaction has ended: now die of the Ctrl-C.
        static_cast<void>(std::fflush(nullptr));  // the exit status reports the result
        // Neither fails for SIGINT; when whoever started us blocks SIGINT,
        // the signal stays pending and the status below says the same.
        static_cast<void>(std::signal(SIGINT, SIG_DFL));
        static_cast<void>(std::raise(SIGINT));
        return 128 + SIGINT;
    }
    return code;
}
