"""GraphQL documents shared by the tests, written as a partner portal would."""

PUBLISH_PROBLEM = """
mutation Publish($input: PublishProblemInput!) {
  publishProblem(input: $input) {
    problem { id title version status city { slug } }
    userErrors { code field message }
    clientMutationId
  }
}"""

UPDATE_PROBLEM = """
mutation Update($input: UpdateProblemInput!) {
  updateProblem(input: $input) {
    problem { id title version status }
    userErrors { code field message }
  }
}"""

PUBLISH_SOLUTION = """
mutation Publish($input: PublishSolutionInput!) {
  publishSolution(input: $input) {
    solution { id title version city { slug } adaptedFrom { id } adaptationNotes }
    userErrors { code field message }
  }
}"""

ADD_COMMENT = """
mutation Add($input: AddCommentInput!) {
  addComment(input: $input) {
    comment { id body author { name } city { slug } }
    userErrors { code field message }
  }
}"""

MARK_ANSWERED = """
mutation Mark($input: MarkProblemAnsweredInput!) {
  markProblemAnswered(input: $input) {
    problem { id status version answeredBy { id } }
    userErrors { code field message }
  }
}"""

PROBLEM = """
query Problem($id: ID!) {
  node(id: $id) { ... on Problem { id title version status answeredBy { id } } }
}"""


def problem_input(
    title: str = "Cloudbursts flood the centre", **extra: object
) -> dict[str, object]:
    return {
        "title": title,
        "summary": "Sewers overflow during short, intense rain.",
        "hazards": ["FLOOD"],
        **extra,
    }
