"""The tests' own signing helpers reproduce the vendors' published examples, so a mock and its
tests cannot agree on a wrong algorithm."""

from __future__ import annotations

from mockkit import aliyun_v1_signature, twilio_signature


def test_twilio_signature_matches_twilios_published_example() -> None:
    # The request-validation example Twilio's helper libraries test against.
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
              "From": "+14158675309", "To": "+18005551212"}

    signature = twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)

    assert signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_aliyun_v1_signature_matches_alibabas_published_example() -> None:
    # The DescribeRegions example of Alibaba Cloud's RPC signature documentation (a GET).
    params = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML",
              "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
              "SignatureVersion": "1.0", "Timestamp": "2016-02-23T12:46:24Z",
              "Version": "2014-05-26"}

    assert aliyun_v1_signature("testsecret", params, "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
