/* A shared object that is not a backend plugin (no rs_backend_entry). */
int rs_test_not_a_backend(void);
int rs_test_not_a_backend(void) { return 42; }
