/* Tests for engine/common/config: typed getters, ranges, unknown keys, and
 * the precise "<file>:<line>: <field>: <value>: <why>" messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "engine/common/config.h"

static const char *doc_text =
    "server:\n"
    "  port: 8000\n"
    "  name: demo\n"
    "  drain: on\n"
    "  ratio: 0.5\n"
    "  mode: fast\n"
    "list:\n"
    "  - a\n"
    "  - b\n";

static void test_getters(void **state) {
    (void)state;
    rs_err err = {0};
    rs_cfg *cfg = rs_cfg_load_string(doc_text, "t.yaml", &err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    rs_cfg_node server = rs_cfg_get(&root, "server");
    assert_true(rs_cfg_is_map(&server));
    uint64_t port = 0;
    assert_int_equal(rs_cfg_u64(&server, "port", true, 0, 1, 65535, &port, &err), 0);
    assert_int_equal(port, 8000);
    char name[16];
    assert_int_equal(rs_cfg_str(&server, "name", true, NULL, name, sizeof(name), &err), 0);
    assert_string_equal(name, "demo");
    bool drain = false;
    assert_int_equal(rs_cfg_bool(&server, "drain", false, false, &drain, &err), 0);
    assert_true(drain);
    double ratio = 0;
    assert_int_equal(rs_cfg_double(&server, "ratio", false, 1.0, 0.0, 1.0, &ratio, &err), 0);
    assert_true(ratio == 0.5);
    static const char *const modes[] = {"slow", "fast", NULL};
    int mode = -1;
    assert_int_equal(rs_cfg_enum(&server, "mode", false, 0, modes, &mode, &err), 0);
    assert_int_equal(mode, 1);
    uint64_t absent = 0;
    assert_int_equal(rs_cfg_u64(&server, "absent", false, 42, 0, 100, &absent, &err), 0);
    assert_int_equal(absent, 42);
    rs_cfg_node list = rs_cfg_get(&root, "list");
    assert_int_equal(rs_cfg_len(&list), 2);
    rs_cfg_node item = rs_cfg_at(&list, 1);
    assert_string_equal(rs_cfg_scalar(&item), "b");
    assert_string_equal(item.path, "list[1]");
    rs_cfg_free(cfg);
}

static void test_errors(void **state) {
    (void)state;
    rs_err err = {0};
    rs_cfg *cfg = rs_cfg_load_string(doc_text, "t.yaml", &err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    rs_cfg_node server = rs_cfg_get(&root, "server");
    uint64_t port = 0;
    assert_int_equal(rs_cfg_u64(&server, "port", true, 0, 1, 1024, &port, &err), -1);
    assert_string_equal(err.msg, "t.yaml:2: server.port: '8000': out of range [1, 1024]");
    assert_int_equal(rs_cfg_u64(&server, "name", true, 0, 0, 10, &port, &err), -1);
    assert_non_null(strstr(err.msg, "server.name: 'demo': expected a non-negative integer"));
    static const char *const modes[] = {"slow", "medium", NULL};
    int mode;
    assert_int_equal(rs_cfg_enum(&server, "mode", false, 0, modes, &mode, &err), -1);
    assert_non_null(strstr(err.msg, "expected one of slow|medium"));
    assert_int_equal(rs_cfg_u64(&server, "missing", true, 0, 0, 10, &port, &err), -1);
    assert_non_null(strstr(err.msg, "missing required field"));
    static const char *const allowed[] = {"port", "name", "drain", "ratio", NULL};
    assert_int_equal(rs_cfg_check_keys(&server, allowed, &err), -1);
    assert_non_null(strstr(err.msg, "server.mode: unknown field"));
    char small[3];
    assert_int_equal(rs_cfg_str(&server, "name", true, NULL, small, sizeof(small), &err), -1);
    assert_non_null(strstr(err.msg, "longer than 2 bytes"));
    bool b;
    assert_int_equal(rs_cfg_bool(&server, "name", true, false, &b, &err), -1);
    rs_cfg_free(cfg);
}

static void test_syntax_error(void **state) {
    (void)state;
    rs_err err = {0};
    rs_cfg *cfg = rs_cfg_load_string("a: [1, 2\nb: 3\n", "bad.yaml", &err);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "bad.yaml:"));
    assert_non_null(strstr(err.msg, "YAML error"));
    cfg = rs_cfg_load_file("/nonexistent/x.yaml", &err);
    assert_null(cfg);
    assert_non_null(strstr(err.msg, "cannot open"));
    cfg = rs_cfg_load_string("", "empty.yaml", &err);
    assert_non_null(cfg);
    rs_cfg_node root = rs_cfg_root(cfg);
    assert_true(rs_cfg_is_map(&root));
    rs_cfg_free(cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_syntax_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
