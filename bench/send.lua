-- wrk script: one Twilio-style send, Basic auth and form body from the environment.
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = "To=%2B8613800000001&From=%2B15005550006&Body=Your+mortgage+repayment+is+due+ref%3ABENCH001"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
